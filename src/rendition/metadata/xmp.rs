//! XMP packets: the rights and description fields read (with roxmltree, no
//! DTD, a bounded node count), a packet of our own written, and a source's
//! packet set upright for the `all` profile.
//!
//! RDF/XML writes one property three ways: an attribute of
//! `rdf:Description`, an element with text, or an element holding an
//! `rdf:Alt`/`Seq`/`Bag` of `rdf:li`. [`values`] reads all three.

use roxmltree::{Document, Node, ParsingOptions};

use super::fields::{Fields, clean};

const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const DC: &str = "http://purl.org/dc/elements/1.1/";
const PHOTOSHOP: &str = "http://ns.adobe.com/photoshop/1.0/";
const XMP_RIGHTS: &str = "http://ns.adobe.com/xap/1.0/rights/";
const PLUS: &str = "http://ns.useplus.org/ldf/xmp/1.0/";

/// A packet with more nodes than this is refused (a packet is a few
/// hundred nodes; a hostile one may be millions).
const MAX_NODES: u32 = 50_000;
/// Larger packets, deeper nesting or more namespace declarations than
/// these are not read (their fields are taken from IIM and EXIF): a real
/// packet is a few KiB, 10 levels and 30 namespaces, and the XML parser's
/// cost grows with the product of depth and namespaces.
const MAX_PACKET: usize = 1 << 20;
const MAX_DEPTH: i64 = 32;
const MAX_NAMESPACES: usize = 64;
/// Values kept of one property (keywords, creators).
const MAX_VALUES: usize = 256;

/// Whether a packet is small and shallow enough to parse: its bytes
/// scanned once, element starts and ends counted.
fn shallow(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() > MAX_PACKET || text.matches("xmlns").count() > MAX_NAMESPACES {
        return false;
    }
    let (mut depth, mut deepest) = (0i64, 0i64);
    for (i, &c) in b.iter().enumerate() {
        match (c, b.get(i + 1)) {
            (b'<', Some(b'/')) => depth -= 1,
            (b'<', Some(b'?' | b'!')) => {}
            (b'<', _) => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (b'>', _) if i > 0 && b[i - 1] == b'/' => depth -= 1,
            _ => {}
        }
    }
    deepest <= MAX_DEPTH
}

pub(super) fn read(packet: &[u8]) -> Fields {
    let Ok(text) = std::str::from_utf8(packet) else {
        return Fields::default();
    };
    // A packet may sit in padding or start with a byte-order mark.
    let text = text.trim_matches(|c: char| c == '\u{feff}' || c.is_whitespace() || c == '\0');
    if !shallow(text) {
        return Fields::default();
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let Ok(doc) = Document::parse_with_options(text, options) else {
        return Fields::default();
    };
    let first = |ns, name| values(&doc, ns, name).into_iter().next();
    Fields {
        creators: values(&doc, DC, "creator"),
        copyright: first(DC, "rights"),
        credit: first(PHOTOSHOP, "Credit"),
        usage_terms: first(XMP_RIGHTS, "UsageTerms"),
        web_statement: first(XMP_RIGHTS, "WebStatement"),
        licensors: values(&doc, PLUS, "LicensorName"),
        title: first(DC, "title"),
        description: first(DC, "description"),
        keywords: values(&doc, DC, "subject"),
        date_created: first(PHOTOSHOP, "DateCreated"),
    }
}

fn is_rdf(node: &Node, names: &[&str]) -> bool {
    node.tag_name().namespace() == Some(RDF) && names.contains(&node.tag_name().name())
}

/// Every value of property `ns:name`, in document order; of a language
/// alternative, `x-default` first. Each property element is read to its
/// own `rdf:Alt`/`Seq`/`Bag` items only, so nested ones cost no more.
fn values(doc: &Document, ns: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for node in doc.descendants().filter(Node::is_element) {
        if out.len() >= MAX_VALUES {
            break;
        }
        if let Some(v) = node.attribute((ns, name)).and_then(clean) {
            out.push(v);
        }
        if node.tag_name().namespace() != Some(ns) || node.tag_name().name() != name {
            continue;
        }
        let mut items: Vec<Node> = node
            .children()
            .filter(|c| is_rdf(c, &["Alt", "Seq", "Bag"]))
            .flat_map(|list| list.children().filter(|li| is_rdf(li, &["li"])))
            .collect();
        items.sort_by_key(|li| li.attribute(("http://www.w3.org/XML/1998/namespace", "lang")) != Some("x-default"));
        if items.is_empty() {
            out.extend(node.text().and_then(clean));
        }
        out.extend(items.iter().filter_map(|li| li.text().and_then(clean)));
    }
    out.truncate(MAX_VALUES);
    out
}

/// A packet carrying `fields`, or `None` when there is nothing to say.
pub(super) fn write(fields: &Fields) -> Option<Vec<u8>> {
    if fields.is_empty() {
        return None;
    }
    let mut body = String::new();
    let mut list = |prop: &str, kind: &str, items: &[String]| {
        if items.is_empty() {
            return;
        }
        let lang = if kind == "Alt" { " xml:lang=\"x-default\"" } else { "" };
        body.push_str(&format!("   <{prop}><rdf:{kind}>"));
        for item in items {
            body.push_str(&format!("<rdf:li{lang}>{}</rdf:li>", escape(item)));
        }
        body.push_str(&format!("</rdf:{kind}></{prop}>\n"));
    };
    let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
    list("dc:creator", "Seq", &fields.creators);
    list("dc:rights", "Alt", &one(&fields.copyright));
    list("xmpRights:UsageTerms", "Alt", &one(&fields.usage_terms));
    list("dc:title", "Alt", &one(&fields.title));
    list("dc:description", "Alt", &one(&fields.description));
    list("dc:subject", "Bag", &fields.keywords);
    for (prop, value) in [
        ("photoshop:Credit", &fields.credit),
        ("xmpRights:WebStatement", &fields.web_statement),
        ("photoshop:DateCreated", &fields.date_created),
    ] {
        if let Some(v) = value {
            body.push_str(&format!("   <{prop}>{}</{prop}>\n", escape(v)));
        }
    }
    if fields.copyright.is_some() {
        body.push_str("   <xmpRights:Marked>True</xmpRights:Marked>\n");
    }
    if !fields.licensors.is_empty() {
        body.push_str("   <plus:Licensor><rdf:Seq>");
        for name in &fields.licensors {
            let name = escape(name);
            body.push_str(&format!(
                "<rdf:li rdf:parseType=\"Resource\"><plus:LicensorName>{name}</plus:LicensorName></rdf:li>"
            ));
        }
        body.push_str("</rdf:Seq></plus:Licensor>\n");
    }
    let packet = format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
         <rdf:RDF xmlns:rdf=\"{RDF}\">\n  \
         <rdf:Description rdf:about=\"\" xmlns:dc=\"{DC}\" xmlns:photoshop=\"{PHOTOSHOP}\" \
         xmlns:xmpRights=\"{XMP_RIGHTS}\" xmlns:plus=\"{PLUS}\">\n\
         {body}  </rdf:Description>\n</rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>"
    );
    Some(packet.into_bytes())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A source's packet with `tiff:Orientation` set to 1: the pixels were
/// turned upright, and a reader that turned them again would show them
/// sideways.
pub(super) fn upright(packet: &[u8]) -> Vec<u8> {
    let mut out = packet.to_vec();
    let key = b"tiff:Orientation";
    let mut at = 0;
    while let Some(found) = out[at..].windows(key.len()).position(|w| w == key) {
        let start = at + found + key.len();
        // `="6"` (attribute) or `>6<` (element): the first digit after it.
        let digit = out[start..]
            .iter()
            .take(4)
            .position(u8::is_ascii_digit)
            .map(|d| start + d);
        if let Some(d) = digit {
            out[d] = b'1';
        }
        at = start;
    }
    out
}
