//! Builds the application: pool, migrations, authenticator, HTTP server. Tests call
//! [`Application::build`] with port 0 and talk to the real thing.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::{Method, header};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::api;
use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, Db};
use crate::metrics::Metrics;
use crate::telemetry;
use crate::worker::Worker;

/// CORS for the browser origins in `SIGNOFF_CORS_ORIGINS` (none when unset): preflights are
/// answered, the headers a client sends are allowed, and those it must read are exposed.
fn cors(origins: &[String]) -> Cors {
    origins
        .iter()
        .fold(Cors::default(), |c, o| c.allowed_origin(o))
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(600)
        // Other origins get the answer without CORS headers (their browser withholds it); the
        // hosted decision page's own same-origin form posts carry an Origin and must pass.
        .block_on_origin_mismatch(false)
}

/// A bound, not yet running, server.
pub struct Application {
    port: u16,
    server: Server,
    db: Db,
    clock: Clock,
    worker: Worker,
    worker_started: bool,
}

impl Application {
    /// Builds the application on the system clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// Builds the application reading the time from `clock` (tests pass a manual one).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let db = Db::new(
            settings.database_url(),
            settings.db_pool_size,
            settings.db_read_concurrency,
            settings.db_timeout,
        );
        if settings.migrate_on_start {
            let db = db.clone();
            let applied = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
                let mut conn = db
                    .get()
                    .map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot connect: {e}"))?;
                db::run_migrations(&mut conn)
            })
            .await??;
            if !applied.is_empty() {
                tracing::info!(?applied, "migrations applied");
            }
        }
        let auth = Authenticator::new(&settings.jwt, clock.clone())?;
        auth.warm_up().await?;
        let auth = web::Data::new(auth);
        let metrics = web::Data::new(Metrics::new());
        // Built even when it does not run (SIGNOFF_WORKER=false), so tests can run it by hand;
        // a delivery client that cannot be built stops start-up.
        let worker = Worker::new(
            db.clone(),
            settings.clone(),
            metrics.clone().into_inner(),
            clock.clone(),
        )?;
        if settings.worker {
            worker.start();
        }
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| anyhow::anyhow!("SIGNOFF_BIND: cannot bind {}: {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let db_data = web::Data::new(db.clone());
        let limiter = web::Data::new(api::ratelimit::RateLimiter::new(settings.link_rate_limit));
        let settings_data = web::Data::from(settings.clone());
        let clock_data = web::Data::new(clock.clone());
        let published = api::openapi();
        let cors_origins = settings.cors_origins.clone();
        let server = HttpServer::new(move || {
            let (app, _derived) = App::new()
                .into_utoipa_app()
                .openapi(api::ApiDoc::openapi())
                .app_data(db_data.clone())
                .app_data(auth.clone())
                .app_data(metrics.clone())
                .app_data(settings_data.clone())
                .app_data(clock_data.clone())
                .app_data(limiter.clone())
                .app_data(api::json_config())
                .app_data(api::query_config())
                .app_data(api::path_config())
                .configure(api::configure)
                .split_for_parts();
            app.service(api::links::decision_page)
                .service(api::links::decision_page_post)
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .external_url_unchecked("/openapi.json", published.clone()),
                )
                .default_service(web::to(api::not_found))
                .wrap(from_fn(api::ids::refuse_hidden_characters))
                .wrap(cors(&cors_origins))
                .wrap(from_fn(telemetry::observe))
        })
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            db,
            clock,
            worker,
            worker_started: settings.worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> Db {
        self.db.clone()
    }

    /// The clock the application reads.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// The worker (running unless SIGNOFF_WORKER=false); tests call
    /// [`Worker::run_pending`] on it.
    pub fn worker(&self) -> Worker {
        self.worker.clone()
    }

    /// Serves until the server is stopped. SIGTERM or SIGINT stops the worker claiming at
    /// once and the HTTP server gracefully; then the worker's attempts in flight finish, what
    /// it did not start is given back, and this returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.worker.clone();
        let signals = tokio::spawn(async move {
            shutdown_signal().await;
            stopper.begin_shutdown();
        });
        let served = self.server.await;
        signals.abort();
        if self.worker_started {
            self.worker.shutdown().await;
        }
        served
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
