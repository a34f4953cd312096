//! Strategies for the questions asked of a generated policy: a purpose, a
//! principal (users, shares with the right or a wrong email, passwords,
//! anonymous), an asset in one of the policy's nodes and a request fitted to
//! its media.

use proptest::prelude::*;
use rendition::job::{Asset, Media, OnExceed, Principal, Purpose, Rendition, Request};

use super::generators::USERS;

#[derive(Debug, Clone)]
pub(super) struct Ask {
    pub(super) purpose: Purpose,
    pub(super) principal: Principal,
    pub(super) asset: Asset,
    pub(super) request: Request,
}

pub(super) fn ask(nodes: usize, shares: usize) -> impl Strategy<Value = Ask> {
    let purpose = prop::sample::select(vec![
        Purpose::Download,
        Purpose::Download,
        Purpose::Share,
        Purpose::Preview,
        Purpose::Publish,
    ]);
    let media = prop::sample::select(Media::ALL.to_vec());
    let (restricted, right_email, deny) = (
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.2),
    );
    (
        purpose,
        0u8..5,
        any::<usize>(),
        right_email,
        any::<usize>(),
        media,
        restricted,
        any::<bool>(),
        request_shape(),
        deny,
    )
        .prop_map(
            move |(purpose, kind, who, right_email, node, media, restricted, generated, shape, deny)| {
                let principal = match kind {
                    0 | 1 => Principal::User(format!("u{}", who % (USERS + 1))), // u6 is unknown
                    2 if shares > 0 => {
                        let s = who % shares;
                        let email = if right_email {
                            format!("S{s}@example.com")
                        } else {
                            "nobody@example.com".into()
                        };
                        Principal::Share {
                            share: format!("s{s}"),
                            email,
                        }
                    }
                    3 => Principal::Password {
                        collection: format!("n{}", who % nodes),
                    },
                    _ => Principal::Anonymous,
                };
                let asset = Asset {
                    id: "a-1".into(),
                    collection: format!("n{}", node % nodes),
                    media,
                    source: "originals/a-1".into(),
                    restricted,
                    generated,
                    filename: None,
                    focal_point: None,
                };
                let on_exceed = if deny { OnExceed::Deny } else { OnExceed::Clamp };
                Ask {
                    purpose,
                    principal,
                    asset,
                    request: Request {
                        rendition: shape.for_media(media),
                        format: Default::default(),
                        quality: 85,
                        on_exceed,
                        page: 1,
                    },
                }
            },
        )
}

/// A request drawn before the media is known, then fitted to it.
#[derive(Debug, Clone)]
struct Shape(u8, Vec<u32>);

impl Shape {
    fn for_media(&self, media: Media) -> Rendition {
        let n = self.1[0];
        match (self.0, media) {
            (0, _) => Rendition::Original,
            (1, _) => Rendition::Proxy,
            (2, Media::Image) => Rendition::MaxEdge(n),
            (3, Media::Image) => Rendition::Set(self.1.clone()),
            (2, Media::Video) => Rendition::MaxHeight(n),
            (3, Media::Video) => Rendition::Poster,
            // p0–p2 are the policy's presets; p3 is not one.
            (4, Media::Image) => Rendition::Preset(format!("p{}", n % 4)),
            _ => Rendition::Original,
        }
    }
}

fn request_shape() -> impl Strategy<Value = Shape> {
    (0u8..5, prop::collection::vec(1u32..6000, 1..5)).prop_map(|(k, sizes)| Shape(k, sizes))
}
