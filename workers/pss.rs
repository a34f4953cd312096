//! The summed PSS of a process tree, read from `/proc`: how the benchmarks
//! (`rendition-bench`) and the memory tests (`tests/it/memory.rs`) count
//! every process of a run. PSS splits shared pages among the processes that
//! map them, so a library mapped by a worker and its engines counts once.

/// The summed PSS of `pid` and its descendants, in KiB.
pub fn tree_pss_kib(pid: u32) -> u64 {
    tree(pid)
        .into_iter()
        .map(|pid| {
            let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
            rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// `pid` and its descendants, as `/proc` lists them now.
pub fn tree(pid: u32) -> Vec<u32> {
    let (mut found, mut pending) = (Vec::new(), vec![pid]);
    while let Some(pid) = pending.pop() {
        found.push(pid);
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten();
        for task in tasks {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pending.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    found
}
