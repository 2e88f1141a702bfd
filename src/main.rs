//! The `signoff` binary: `serve`, `migrate`, `token`, `openapi`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use signoff::config::{JwtSettings, ProcessEnv, Settings};
use signoff::startup::Application;

/// mimalloc instead of glibc's allocator: the request path allocates many small JSON values,
/// and glibc's malloc/free showed as the largest user-space cost in `perf` (about 15% of the
/// service's samples under the decision load of `make bench`). Without transparent huge pages
/// (`no_thp`): with them, every 2 MiB the heap grew by was zeroed on first touch, a third of
/// the CPU of a request asking a role of 20,000 (`perf`: `clear_page_erms` under
/// `do_huge_pmd_anonymous_page`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "signoff",
    version,
    about = "Headless approval engine for ticketing platforms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (and, unless SIGNOFF_WORKER=false, the background worker).
    Serve {
        /// Do not run pending migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Run pending database migrations and exit.
    Migrate,
    /// Print a development JWT signed with SIGNOFF_JWT_HS256_SECRET.
    Token {
        /// The tenant the token acts for.
        #[arg(long)]
        tenant: String,
        /// Space-separated scopes; default: every scope.
        #[arg(long)]
        scope: Option<String>,
        /// The client (`sub` claim).
        #[arg(long, default_value = "dev-client")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Print the OpenAPI document.
    Openapi,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    signoff::telemetry::init();
    let result = match cli.command {
        Command::Openapi => {
            print!("{}", signoff::api::openapi_json());
            Ok(())
        }
        Command::Token {
            tenant,
            scope,
            sub,
            ttl,
        } => JwtSettings::from_env(&ProcessEnv)
            .map_err(anyhow::Error::from)
            .and_then(|jwt| {
                let scope = scope.unwrap_or_else(signoff::auth::all_scopes);
                signoff::auth::mint_token(&jwt, &tenant, &scope, &sub, ttl).map(|t| println!("{t}"))
            }),
        Command::Migrate => migrate(),
        Command::Serve { no_migrate } => serve(no_migrate),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signoff: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn migrate() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("DATABASE_URL: is required but not set"))?;
    use diesel::Connection;
    let mut conn = diesel::PgConnection::establish(&url)
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot connect: {e}"))?;
    let applied = signoff::db::run_migrations(&mut conn)?;
    println!("{} migration(s) applied", applied.len());
    Ok(())
}

fn serve(no_migrate: bool) -> anyhow::Result<()> {
    let mut settings = Settings::from_env(&ProcessEnv)?;
    if no_migrate {
        settings.migrate_on_start = false;
    }
    actix_web::rt::System::new().block_on(async move {
        let bind = settings.bind;
        let app = Application::build(settings).await?;
        tracing::info!(%bind, port = app.port(), "signoff listening");
        app.run_until_stopped().await?;
        Ok(())
    })
}
