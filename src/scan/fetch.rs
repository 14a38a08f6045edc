//! Fetching what a scan reads: the page, then the same-origin scripts it loads (and the modules
//! and workers those import), a few at a time, each request under its own timeout and all of
//! them under the scan's time budget, each body read only up to the byte bound.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::join_all;
use url::Url;

use super::Bounds;
use super::extract::{PageContext, page_links, script_links};
use crate::client::{Deadline, HttpClient, HttpRequestSpec, display_url};

/// Scripts fetched at once: enough to hide latency, few enough to stay polite.
const PARALLEL: usize = 4;

/// What became of one request.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// A 2xx response; `text` holds at most the byte bound.
    Read {
        /// The status code.
        status: u16,
        /// The body, lossily decoded.
        text: String,
        /// Bytes read.
        bytes: usize,
        /// Whether the body went past the bound and was cut.
        truncated: bool,
        /// Where the response came from, after redirects.
        final_url: Url,
    },
    /// Any other status.
    Status(u16),
    /// A redirect led to another origin; the content is not the site's and is not scanned.
    OffOrigin(Url),
    /// The request failed or timed out.
    Failed(String),
}

/// One fetched resource.
#[derive(Debug, Clone)]
pub struct Source {
    /// The URL requested.
    pub url: Url,
    /// Where it was found (`None` for the page itself).
    pub found_in: Option<String>,
    /// What came back.
    pub fetched: Fetched,
    /// When the request started, from the start of the scan.
    pub started: Duration,
    /// How long it took.
    pub took: Duration,
}

impl Source {
    /// The text read, when the request succeeded.
    pub fn text(&self) -> Option<&str> {
        match &self.fetched {
            Fetched::Read { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// A short name for a resource of the page's origin: its path (query hidden), or the full
/// display URL for another origin.
pub fn label(url: &Url, page: &Url) -> String {
    if url.origin() == page.origin() {
        let mut s = url.path().to_string();
        if url.query().is_some() {
            s.push_str("?…");
        }
        s
    } else {
        display_url(url)
    }
}

/// Everything fetched for one scan.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The page.
    pub page: Source,
    /// How the page's text resolves URLs, when it was read.
    pub context: Option<PageContext>,
    /// Same-origin scripts, in discovery order.
    pub scripts: Vec<Source>,
    /// Scripts of other origins (not fetched), with where they were found.
    pub cross_origin: Vec<(Url, String)>,
    /// Same-origin scripts not fetched because `--max-scripts` was reached.
    pub over_count: Vec<(Url, String)>,
    /// Same-origin scripts not fetched because the time budget ran out.
    pub out_of_time: Vec<(Url, String)>,
}

/// Fetches with a bounded client under one scan-wide deadline.
pub struct Fetcher<'a> {
    http: &'a HttpClient,
    bounds: &'a Bounds,
    deadline: Deadline,
    t0: Instant,
}

impl<'a> Fetcher<'a> {
    /// A fetcher whose requests all end by `deadline`; times are reported from `t0`.
    pub fn new(http: &'a HttpClient, bounds: &'a Bounds, deadline: Deadline, t0: Instant) -> Self {
        Self {
            http,
            bounds,
            deadline,
            t0,
        }
    }

    /// Time one more request may take, or `None` once the budget is spent.
    fn budget(&self) -> Option<std::time::Duration> {
        let left = self.deadline.remaining();
        (!left.is_zero()).then(|| left.min(self.bounds.request_timeout))
    }

    /// Fetches one resource as a [`Source`] found in `found_in`.
    async fn source(
        &self,
        url: &Url,
        found_in: Option<String>,
        accept: &str,
        origin: Option<&Url>,
    ) -> Source {
        let started = self.t0.elapsed();
        let at = Instant::now();
        let fetched = self.get(url, accept, origin).await;
        Source {
            url: url.clone(),
            found_in,
            fetched,
            started,
            took: at.elapsed(),
        }
    }

    async fn get(&self, url: &Url, accept: &str, origin: Option<&Url>) -> Fetched {
        let Some(budget) = self.budget() else {
            return Fetched::Failed(format!(
                "not requested: the scan's time budget ({}) ran out",
                humantime::format_duration(self.deadline.budget)
            ));
        };
        let spec = HttpRequestSpec::new("GET", url.as_str()).header("Accept", accept);
        match self.http.send(&spec, budget).await {
            Ok(r) if origin.is_some_and(|o| o.origin() != r.url.origin()) => {
                Fetched::OffOrigin(r.url)
            }
            Ok(r) if (200..300).contains(&r.status) => Fetched::Read {
                status: r.status,
                bytes: r.body.len(),
                text: String::from_utf8_lossy(&r.body).into_owned(),
                truncated: r.body_truncated,
                final_url: r.url,
            },
            Ok(r) => Fetched::Status(r.status),
            Err(e) => Fetched::Failed(e.to_string()),
        }
    }

    /// Fetches the page, then its same-origin scripts breadth-first within the bounds.
    pub async fn collect(&self, page_url: &Url) -> Collected {
        let page = self
            .source(
                page_url,
                None,
                "text/html,application/xhtml+xml,*/*;q=0.8",
                None,
            )
            .await;
        let mut collected = Collected {
            page,
            context: None,
            scripts: Vec::new(),
            cross_origin: Vec::new(),
            over_count: Vec::new(),
            out_of_time: Vec::new(),
        };
        let Fetched::Read {
            text, final_url, ..
        } = &collected.page.fetched
        else {
            return collected;
        };
        let location = final_url.clone();
        let links = page_links(text, &location);
        collected.context = Some(PageContext {
            location: location.clone(),
            base: links.base.clone(),
        });
        let page_label = label(&location, &location);
        let mut seen: HashSet<Url> = HashSet::new();
        let mut queue: VecDeque<(Url, String)> = VecDeque::new();
        self.enqueue(
            links.scripts,
            &page_label,
            &location,
            &mut seen,
            &mut queue,
            &mut collected,
        );
        while !queue.is_empty() {
            let room = self
                .bounds
                .max_scripts
                .saturating_sub(collected.scripts.len());
            if room == 0 {
                collected.over_count.extend(queue.drain(..));
                break;
            }
            if self.budget().is_none() {
                collected.out_of_time.extend(queue.drain(..));
                break;
            }
            let wave: Vec<(Url, String)> =
                queue.drain(..queue.len().min(room).min(PARALLEL)).collect();
            let results = join_all(wave.into_iter().map(|(url, from)| {
                let location = &location;
                async move { self.source(&url, Some(from), "*/*", Some(location)).await }
            }))
            .await;
            for source in results {
                if let Fetched::Read {
                    text, final_url, ..
                } = &source.fetched
                {
                    let from = label(&source.url, &location);
                    self.enqueue(
                        script_links(text, final_url),
                        &from,
                        &location,
                        &mut seen,
                        &mut queue,
                        &mut collected,
                    );
                }
                collected.scripts.push(source);
            }
        }
        collected
    }

    /// Queues the same-origin links not seen yet; records the others.
    fn enqueue(
        &self,
        links: Vec<Url>,
        from: &str,
        page: &Url,
        seen: &mut HashSet<Url>,
        queue: &mut VecDeque<(Url, String)>,
        collected: &mut Collected,
    ) {
        for url in links {
            if url.origin() != page.origin() {
                if collected.cross_origin.len() < super::MAX_LISTED
                    && !collected.cross_origin.iter().any(|(u, _)| *u == url)
                {
                    collected.cross_origin.push((url, from.to_string()));
                }
                continue;
            }
            if url == *page || !seen.insert(url.clone()) {
                continue;
            }
            queue.push_back((url, from.to_string()));
        }
    }
}
