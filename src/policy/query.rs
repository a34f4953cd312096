//! One question to the resolver, in its own file: the resolver's steps
//! (`admit`, `deliver`) read it, and `resolve` asks it, without any of them
//! importing another's module for it.

use chrono::{DateTime, Utc};

use crate::job::{Asset, Job, Media, Principal, Purpose, Request};

/// One question to the resolver.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub purpose: Purpose,
    pub principal: &'a Principal,
    pub asset: &'a Asset,
    pub request: &'a Request,
    /// The moment share expiry is judged at.
    pub now: DateTime<Utc>,
}

impl<'a> Query<'a> {
    pub fn of(job: &'a Job, now: DateTime<Utc>) -> Query<'a> {
        Query {
            purpose: job.purpose,
            principal: &job.principal,
            asset: &job.asset,
            request: &job.request,
            now,
        }
    }

    /// The file type whose limits apply: a poster (or a storyboard) is an
    /// image.
    pub fn limit_media(&self) -> Media {
        if self.request.rendition.is_still() {
            Media::Image
        } else {
            self.asset.media
        }
    }
}
