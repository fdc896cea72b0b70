//! A product backed by an upstream HTTP(S) URL, such as a GeoServer WFS GetFeature request. The
//! upstream body is relayed chunk by chunk; of its headers only a validated media type is kept, so
//! nothing upstream-specific (cookies, server banners, caching rules) leaks to our clients.

use futures_util::TryStreamExt;

use super::{SourceBody, SourceError, parse_media_type};

#[derive(Debug)]
pub struct HttpSource {
    url: reqwest::Url,
    media_type: Option<String>,
    client: reqwest::Client,
}

impl HttpSource {
    pub fn new(
        url: &str,
        media_type: Option<&str>,
        client: reqwest::Client,
    ) -> Result<Self, SourceError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| SourceError::Config(format!("invalid upstream URL: {e}")))?;
        let media_type = media_type
            .map(|m| {
                parse_media_type(m)
                    .ok_or_else(|| SourceError::Config(format!("`{m}` is not a media type")))
            })
            .transpose()?;
        Ok(Self {
            url,
            media_type,
            client,
        })
    }

    pub async fn open(&self, traceparent: Option<&str>) -> Result<SourceBody, SourceError> {
        let url = self.url.as_str().to_string();
        let mut request = self.client.get(self.url.clone());
        if let Some(tp) = traceparent {
            // The upstream call joins the request's trace (W3C Trace Context).
            request = request.header("traceparent", tp);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                SourceError::UpstreamTimeout { url: url.clone() }
            } else {
                SourceError::UpstreamUnavailable {
                    url: url.clone(),
                    reason: error_chain(&e),
                }
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(SourceError::UpstreamStatus {
                url,
                status: status.as_u16(),
            });
        }
        let media_type = self
            .media_type
            .clone()
            .or_else(|| {
                response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_media_type)
            })
            .unwrap_or_else(|| "application/octet-stream".to_string());
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        Ok(SourceBody {
            media_type,
            // Relayed as chunked: an upstream Content-Length is not trusted to match what arrives.
            length: None,
            stream: Box::pin(stream),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
