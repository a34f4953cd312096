//! The pure integration suite: a module per concern, none of which needs
//! RabbitMQ or an S3 server, so a plain `cargo test` runs it anywhere. The
//! tests on the real services are the `services` and `restart` binaries.

mod audio;
mod bombs;
mod bombs_make;
mod cli;
mod common;
mod deploy;
mod docs;
mod engine;
mod engine_processes;
mod forensic;
mod formats;
mod formats_heif;
mod formats_jp2;
mod formats_legacy;
mod formats_pdf;
mod formats_psd;
mod formats_raw;
mod formats_svg;
mod formats_tiff;
mod frames;
mod fuzz_corpus;
mod imports;
mod memory;
mod metadata;
mod monitoring;
mod pipeline;
mod print;
mod properties;
mod scenarios;
mod schema;
mod serve_limits;
mod storyboard;
mod video;
mod video_engines;
mod video_hostile;
