//! Exports (`/admin/exports`): the newest export runs with their state, counts and errors,
//! the schedules, a form that queues a run (as `POST /exports` does for an admin: any shape,
//! to S3 or to a folder of the exporter's host), a run's page with its files, and "run
//! again" (a new run, a new generation, of the same spec). Runs are read and created through
//! `eye_exporter::runs`; an `eye-exporter` process runs them.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use eye_exporter::runs::{self, Run};
use eye_exporter::{Destination, EventFilter, ExportSpec, Shape, schedule};
use serde::Deserialize;

use super::events::time;
use super::page;
use crate::admin::session::{Posted, Session};
use crate::admin::view::{AdminError, render};
use crate::params::uuid_param;
use crate::routes::exports::export_error;
use crate::state::AppState;
use crate::store::StoreError;

/// Runs listed.
const SHOWN: u64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/exports", get(list))
        .route("/admin/exports/create", post(create))
        .route("/admin/exports/{id}", get(show))
        .route("/admin/exports/{id}/again", post(again))
}

#[derive(Debug, Default, Deserialize)]
struct Flash {
    #[serde(default)]
    done: Option<String>,
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Events => "events",
        Shape::Plans => "plans",
        Shape::RwgEntities => "rwg_entities",
    }
}

/// Where a generation's files are: `s3://bucket/prefix/name/generation` or the folder.
fn location(spec: &ExportSpec, generation: &str) -> String {
    let base = match &spec.destination {
        Destination::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
        Destination::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        Destination::Folder { path } => path.trim_end_matches('/').to_owned(),
    };
    format!("{base}/{}/{generation}", spec.name)
}

fn filter_text(f: &EventFilter) -> String {
    let mut parts = Vec::new();
    for (label, value) in [
        ("app", &f.application),
        ("category", &f.category),
        ("name", &f.name),
    ] {
        if let Some(v) = value {
            parts.push(format!("{label} {v}"));
        }
    }
    if let Some(from) = f.from {
        parts.push(format!("from {}", stamp(from)));
    }
    if let Some(to) = f.to {
        parts.push(format!("to {}", stamp(to)));
    }
    parts.join(", ")
}

fn view(r: &Run) -> minijinja::Value {
    let spec = r.spec().ok();
    minijinja::context! {
        id => r.id.to_string(), name => r.name, state => r.state, generation => r.generation,
        snapshot_at => stamp(r.snapshot_at), files_written => r.files_written,
        records => r.records, error => r.error, descriptor_key => r.descriptor_key,
        attempts => r.attempts, schedule => r.schedule_name,
        created_at => stamp(r.created_at), started_at => r.started_at.map(stamp),
        finished_at => r.finished_at.map(stamp),
        shape => spec.as_ref().map(|s| shape_name(s.shape)),
        filter => spec.as_ref().map(|s| filter_text(&s.filter)),
        chunk_size => spec.as_ref().map(|s| s.chunk_size),
        location => spec.as_ref().map(|s| location(s, &r.generation)),
    }
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, AdminError> {
    let runs = runs::list(&state.reads, SHOWN)
        .await
        .map_err(StoreError::from)?;
    let schedules = schedule::list(&state.reads)
        .await
        .map_err(StoreError::from)?;
    let schedules: Vec<_> = schedules
        .iter()
        .map(|s| {
            let spec: Option<ExportSpec> = serde_json::from_value(s.spec.clone()).ok();
            minijinja::context! {
                name => s.name, every_secs => s.every_secs, next_run_at => stamp(s.next_run_at),
                running => s.lease_owner.is_some(),
                shape => spec.as_ref().map(|s| shape_name(s.shape)),
                location => spec.as_ref().map(|s| location(s, "…")),
            }
        })
        .collect();
    render(
        "exports.html",
        page(
            &session,
            "exports",
            minijinja::context! {
                runs => runs.iter().map(view).collect::<Vec<_>>(), schedules => schedules,
                done => flash.done, shown => SHOWN,
            },
        ),
    )
}

async fn found(state: &AppState, id: &str) -> Result<Run, AdminError> {
    let id = uuid_param("id", id)?;
    runs::get(&state.reads, id)
        .await
        .map_err(StoreError::from)?
        .ok_or(AdminError::NotFound("export"))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, AdminError> {
    let run = found(&state, &id).await?;
    let files = runs::files(&state.reads, run.id)
        .await
        .map_err(StoreError::from)?;
    let folder = run.spec().ok().map(|s| location(&s, &run.generation));
    let files: Vec<_> = files
        .iter()
        .map(|f| {
            minijinja::context! {
                seq => f.seq, file_name => f.file_name, records => f.records, bytes => f.bytes,
                sha256 => f.sha256,
                key => folder.as_ref().map(|d| format!("{d}/{}", f.file_name)),
            }
        })
        .collect();
    render(
        "export.html",
        page(
            &session,
            "exports",
            minijinja::context! { r => view(&run), files => files, done => flash.done },
        ),
    )
}

fn to_run(run: &Run, done: &str) -> Response {
    let query = serde_urlencoded::to_string([("done", done)]).unwrap_or_default();
    Redirect::to(&format!("/admin/exports/{}?{query}", run.id)).into_response()
}

/// Queues a run of the posted spec (an admin's: every shape, S3 or a folder).
async fn create(State(state): State<AppState>, posted: Posted) -> Result<Response, AdminError> {
    let form = &posted.form;
    let shape = match form.get("shape").unwrap_or("events") {
        "events" => Shape::Events,
        "plans" => Shape::Plans,
        "rwg_entities" => Shape::RwgEntities,
        other => {
            return Err(AdminError::bad(
                "shape",
                format!("events, plans or rwg_entities, not {other:?}"),
            ));
        }
    };
    let owned = |name: &str| form.get(name).map(str::to_owned);
    let destination = Destination::parse(form.get("destination").unwrap_or_default())
        .map_err(|e| AdminError::Api(export_error(e)))?;
    let spec = ExportSpec {
        name: owned("name").unwrap_or_default(),
        shape,
        filter: EventFilter {
            application: owned("application"),
            category: owned("category"),
            name: owned("event_name"),
            from: time("from", &owned("from"))?,
            to: time("to", &owned("to"))?,
        },
        chunk_size: form
            .positive("chunk_size")?
            .unwrap_or(eye_exporter::spec::DEFAULT_CHUNK_SIZE),
        destination,
        url_base: owned("url_base"),
    };
    let run = runs::create(&state.reads, &spec, None)
        .await
        .map_err(|e| AdminError::Api(export_error(e)))?;
    Ok(to_run(
        &run,
        "Export queued: an eye-exporter process runs it.",
    ))
}

/// A new run (a new generation) of a run's spec.
async fn again(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _posted: Posted,
) -> Result<Response, AdminError> {
    let old = found(&state, &id).await?;
    let spec = old.spec().map_err(|e| AdminError::Api(export_error(e)))?;
    let run = runs::create(&state.reads, &spec, None)
        .await
        .map_err(|e| AdminError::Api(export_error(e)))?;
    Ok(to_run(&run, "Export queued again: a new generation."))
}
