//! `GET /admin/log-level` (the running log filter) and `POST /admin/log-level` (a new one,
//! `RUST_LOG` syntax in the body: `debug`, `ringward=debug,info`), to look closer at a
//! running router without restarting it. The filter itself lives in `crate::logging`.

use http::{Request, Response, StatusCode};
use serde_json::json;
use tracing::warn;

use crate::admin::routes::{authorized_body, json_response};
use crate::control::shared::Shared;
use crate::logging::{self, FilterError};
use crate::proxy::body::{BoxError, ProxyBody};

/// 501 when the router runs under a subscriber `crate::logging` did not install.
fn not_installed() -> Response<ProxyBody> {
    json_response(
        StatusCode::NOT_IMPLEMENTED,
        &json!({"error": "the log filter is not Ringward's (the embedding program installed its own subscriber)"}),
    )
}

/// `GET /admin/log-level`: `{"filter": "..."}`.
pub(crate) fn get() -> Response<ProxyBody> {
    match logging::current_filter() {
        Some(filter) => json_response(StatusCode::OK, &json!({ "filter": filter })),
        None => not_installed(),
    }
}

/// `POST /admin/log-level`: 200 `{"filter", "previous"}`; 400 with the parser's message for
/// a filter that does not parse (the running one is kept).
pub(crate) async fn set<B>(shared: &Shared, req: Request<B>) -> Response<ProxyBody>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    let body = match authorized_body(shared, req).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let Ok(directives) = std::str::from_utf8(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "the filter is not UTF-8"}),
        );
    };
    let directives = directives.trim();
    match logging::set_filter(directives) {
        Ok(previous) => {
            // WARN, so the change is on record whatever the new filter lets through.
            warn!(filter = directives, previous = %previous, "log filter changed");
            json_response(
                StatusCode::OK,
                &json!({"filter": logging::current_filter(), "previous": previous}),
            )
        }
        Err(FilterError::Invalid(error)) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("invalid filter: {error}"), "filter": directives}),
        ),
        Err(FilterError::NotInstalled) => not_installed(),
    }
}
