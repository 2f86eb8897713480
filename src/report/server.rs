//! `faultline serve`: the index of stored runs, suites over time (`/suites/`) and every
//! file under the store, read-only.
//! Paths are confined to the store: `..`, absolute paths and symlinks leading outside are
//! refused.

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::escape;
use super::store_index::{index_html, list_runs};
use super::suite_history::{
    NIGHTS_SHOWN, list_suites, load_nights, run_link, suite_html, suites_html,
};

#[derive(Clone)]
struct Store(Arc<PathBuf>);

pub fn router(store: PathBuf) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/runs/", get(index))
        .route("/runs/{*path}", get(file))
        .route("/suites/", get(suites))
        .route("/suites", get(suites))
        .route("/suites/{name}/", get(suite))
        .route("/suites/{name}", get(suite))
        .with_state(Store(Arc::new(store)))
}

/// Serves `store` on `listener` until the task is dropped or the process ends.
pub async fn serve(listener: tokio::net::TcpListener, store: PathBuf) -> std::io::Result<()> {
    axum::serve(listener, router(store)).await
}

async fn index(State(Store(store)): State<Store>) -> Response {
    let store2 = store.clone();
    match tokio::task::spawn_blocking(move || list_runs(&store2)).await {
        Ok(Ok(runs)) => Html(index_html(&runs, &store)).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn suites(State(Store(store)): State<Store>) -> Response {
    match tokio::task::spawn_blocking(move || list_suites(&store)).await {
        Ok(Ok(all)) => Html(suites_html(&all)).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn suite(State(Store(store)): State<Store>, UrlPath(name): UrlPath<String>) -> Response {
    let page = tokio::task::spawn_blocking(move || {
        load_nights(&store, &name).map(|nights| {
            nights.map(|n| suite_html(&name, &n, NIGHTS_SHOWN, &|d| run_link(&store, d)))
        })
    })
    .await;
    match page {
        Ok(Ok(Some(page))) => Html(page).into_response(),
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, "no such suite in the store").into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

/// `rel` under `store`, or `None` if it would leave the store.
fn confine(store: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let root = store.canonicalize().ok()?;
    let full = root.join(rel).canonicalize().ok()?;
    full.starts_with(&root).then_some(full)
}

async fn file(State(Store(store)): State<Store>, UrlPath(rel): UrlPath<String>) -> Response {
    let Some(path) = confine(&store, &rel) else {
        return (StatusCode::NOT_FOUND, "not found in the store").into_response();
    };
    if path.is_dir() {
        return listing(&path, &rel).into_response();
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&path))], bytes).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

fn listing(dir: &Path, rel: &str) -> Html<String> {
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.path().is_dir(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let base = format!("/runs/{}", rel.trim_matches('/'));
    let mut out = format!(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>{0}</title></head><body style="font:14px system-ui,sans-serif;margin:24px"><p><a href="/">all runs</a></p><h1 style="font-size:18px">{0}</h1><ul>"#,
        escape::html(&base)
    );
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        let _ = write!(
            out,
            r#"<li><a href="{}/{}{slash}">{}{slash}</a></li>"#,
            escape::html(&base),
            escape::html(&name),
            escape::html(&name)
        );
    }
    out.push_str("</ul></body></html>");
    Html(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("t/20260101T000000")).unwrap();
        std::fs::write(dir.path().join("t/20260101T000000/report.html"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("t/escape")).unwrap();
        assert!(confine(dir.path(), "t/20260101T000000/report.html").is_some());
        assert!(confine(dir.path(), "/t/20260101T000000/").is_some());
        assert!(confine(dir.path(), "t/../../etc/passwd").is_none());
        assert!(confine(dir.path(), "t/escape/passwd").is_none());
        assert!(confine(dir.path(), "t/missing").is_none());
    }
}
