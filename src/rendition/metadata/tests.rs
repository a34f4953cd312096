use exif::{Field, In, Tag, Value};

use super::*;

fn ascii(tag: Tag, text: &str) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    }
}

/// A camera's EXIF: rights, how it was taken, and what is private.
fn camera_exif() -> Vec<u8> {
    let fields = [
        ascii(Tag::Artist, "Ada Lovelace"),
        ascii(Tag::Copyright, "© Brand 2026"),
        ascii(Tag::Make, "Canon"),
        ascii(Tag::Model, "EOS R5"),
        ascii(Tag::BodySerialNumber, "SERIAL-0451"),
        ascii(Tag::CameraOwnerName, "Grace Hopper"),
        ascii(Tag::LensSerialNumber, "LENS-0452"),
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![6]),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![(48, 1).into(), (51, 1).into(), (30, 1).into()]),
        },
    ];
    let mut writer = exif::experimental::Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

const PACKET: &str = r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
  xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/" xmlns:exif="http://ns.adobe.com/exif/1.0/"
  photoshop:Credit="Brand Photo Desk" tiff:Orientation="6" exif:GPSLatitude="48,51.5N">
 <dc:creator><rdf:Seq><rdf:li>Ada Lovelace</rdf:li><rdf:li>Charles Babbage</rdf:li></rdf:Seq></dc:creator>
 <dc:rights><rdf:Alt><rdf:li xml:lang="fr">© Marque</rdf:li><rdf:li xml:lang="x-default">© Brand &amp; Co 2026</rdf:li></rdf:Alt></dc:rights>
 <dc:subject><rdf:Bag><rdf:li>launch</rdf:li><rdf:li>spring</rdf:li></rdf:Bag></dc:subject>
 <xmpRights:WebStatement>https://brand.example/licence</xmpRights:WebStatement>
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#;

fn source() -> Metadata {
    Metadata {
        exif: Some(camera_exif()),
        xmp: Some(PACKET.as_bytes().to_vec()),
        iim: None,
    }
}

#[test]
fn xmp_is_read_in_all_three_rdf_forms_and_x_default_comes_first() {
    let f = Fields::read(&source());
    assert_eq!(f.creators, ["Ada Lovelace", "Charles Babbage"]);
    assert_eq!(f.copyright.as_deref(), Some("© Brand & Co 2026"));
    assert_eq!(f.credit.as_deref(), Some("Brand Photo Desk"));
    assert_eq!(f.keywords, ["launch", "spring"]);
    assert_eq!(f.web_statement.as_deref(), Some("https://brand.example/licence"));
}

#[test]
fn what_we_write_reads_back_the_same() {
    let mut fields = Fields::read(&source());
    fields.usage_terms = Some("Licensed to <ann@example.com> until 2027-01-01".into());
    fields.licensors = vec!["Brand Licensing".into()];
    let packet = xmp::write(&fields).unwrap();
    assert_eq!(xmp::read(&packet), fields);
    let datasets = iim::write(&fields).unwrap();
    let back = iim::read(&datasets);
    assert_eq!(back.creators, fields.creators);
    assert_eq!(back.copyright, fields.copyright);
    assert_eq!(back.keywords, fields.keywords);
}

#[test]
fn rights_keeps_the_rights_and_nothing_else() {
    let spec = MetadataSpec {
        profile: Profile::Rights,
        usage_terms: None,
    };
    let out = embed(&source(), &spec);
    let fields = Fields::read(&Metadata {
        exif: out.exif.clone(),
        xmp: out.xmp.clone(),
        iim: out.iim.clone(),
    });
    assert_eq!(fields.copyright.as_deref(), Some("© Brand & Co 2026"));
    assert!(fields.keywords.is_empty(), "keywords are `public`'s");
    let exif = String::from_utf8_lossy(out.exif.as_deref().unwrap()).into_owned();
    assert!(exif.contains("Ada Lovelace") && !exif.contains("Canon"), "{exif}");
}

#[test]
fn public_keeps_the_camera_but_no_serial_owner_or_position() {
    let spec = MetadataSpec {
        profile: Profile::Public,
        usage_terms: None,
    };
    let out = embed(&source(), &spec);
    let exif = out.exif.unwrap();
    let text = String::from_utf8_lossy(&exif);
    assert!(text.contains("Canon") && text.contains("EOS R5"), "{text}");
    for private in ["SERIAL-0451", "LENS-0452", "Grace Hopper"] {
        assert!(!text.contains(private), "{private} leaked");
    }
    let read = exif::Reader::new().read_raw(exif).unwrap();
    assert!(read.get_field(Tag::GPSLatitude, In::PRIMARY).is_none());
    assert!(
        read.get_field(Tag::Orientation, In::PRIMARY).is_none(),
        "pixels are upright"
    );
    let xmp = String::from_utf8(out.xmp.unwrap()).unwrap();
    assert!(!xmp.contains("GPS") && xmp.contains("launch"), "{xmp}");
}

#[test]
fn all_copies_the_blocks_upright_and_none_writes_nothing() {
    let all = embed(
        &source(),
        &MetadataSpec {
            profile: Profile::All,
            usage_terms: None,
        },
    );
    let read = exif::Reader::new().read_raw(all.exif.unwrap()).unwrap();
    let orientation = read.get_field(Tag::Orientation, In::PRIMARY).unwrap();
    assert_eq!(orientation.value.get_uint(0), Some(1));
    assert!(
        read.get_field(Tag::BodySerialNumber, In::PRIMARY).is_some(),
        "all is all"
    );
    let xmp = String::from_utf8(all.xmp.unwrap()).unwrap();
    assert!(xmp.contains(r#"tiff:Orientation="1""#), "{xmp}");
    let none = embed(&source(), &MetadataSpec::default_none());
    assert_eq!(none, Embedded::default());
}

#[test]
fn usage_terms_replace_the_sources_and_reach_an_all_rendition() {
    let spec = MetadataSpec {
        profile: Profile::All,
        usage_terms: Some("Licensed to ann@example.com until 2027-01-01".into()),
    };
    let out = embed(&source(), &spec);
    let fields = xmp::read(out.xmp.as_deref().unwrap());
    assert_eq!(fields.usage_terms, spec.usage_terms);
}

#[test]
fn hostile_blocks_yield_nothing() {
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>"#;
    let bad = Metadata {
        exif: Some(b"II*\0\xff\xff\xff\x7f".to_vec()),
        xmp: Some(billion_laughs.as_bytes().to_vec()),
        iim: Some(vec![0x1C, 2, 80, 0xFF, 0xFF, b'x']),
    };
    assert!(Fields::read(&bad).is_empty());
    let irb = b"8BIM\x04\x04\x00\x00\xff\xff\xff\xf0";
    assert!(irb_resource(irb, 0x0404).is_none());
}

impl MetadataSpec {
    fn default_none() -> MetadataSpec {
        MetadataSpec {
            profile: Profile::None,
            usage_terms: None,
        }
    }
}

#[test]
fn a_deep_or_wide_packet_is_not_parsed() {
    let nested = |depth: usize| {
        let open = "<dc:subject><rdf:Bag><rdf:li>".repeat(depth);
        let close = "</rdf:li></rdf:Bag></dc:subject>".repeat(depth);
        format!(
            r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">{open}k{close}</rdf:Description></rdf:RDF></x:xmpmeta>"#
        )
    };
    assert_eq!(
        xmp::read(nested(2).as_bytes()).keywords.len(),
        1,
        "a shallow packet is read"
    );
    assert!(xmp::read(nested(16_000).as_bytes()).is_empty(), "16 000 levels are not");
    let namespaces: String = (0..100).map(|n| format!(r#"<a xmlns:p{n}="urn:{n}">"#)).collect();
    assert!(xmp::read(namespaces.as_bytes()).is_empty());
}

#[test]
fn thousands_of_exif_entries_sharing_one_value_cost_one_lookup_each() {
    // IFD0 of 2 000 UserComment entries, each naming the same 1 MiB, and an
    // Artist: reading every entry would copy 2 GB.
    let entries = 2_000usize;
    let blob_at = 8 + 2 + 12 * (entries + 1) + 4;
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&((entries + 1) as u16).to_le_bytes());
    let artist = b"Ada\0";
    tiff.extend_from_slice(&0x013Bu16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&4u32.to_le_bytes());
    tiff.extend_from_slice(artist);
    for _ in 0..entries {
        tiff.extend_from_slice(&0x9286u16.to_le_bytes());
        tiff.extend_from_slice(&7u16.to_le_bytes());
        tiff.extend_from_slice(&(1u32 << 20).to_le_bytes());
        tiff.extend_from_slice(&(blob_at as u32).to_le_bytes());
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.resize(blob_at + (1 << 20), b'x');
    let out = embed(
        &Metadata::from_exif(Some(&tiff)),
        &MetadataSpec {
            profile: Profile::Public,
            usage_terms: None,
        },
    );
    assert_eq!(out.fields.creators, ["Ada"]);
    assert!(out.exif.unwrap().len() < 4096, "the comment is not public");
}
