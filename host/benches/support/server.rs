//! Starting a gateway for a benchmark: on a thread of its own with a one-worker runtime, so that
//! server and load generator each have one of the machine's two cores, as with an external load
//! tool.

use std::future::Future;

use rdev::config::Config;
use rdev::http::AppState;

/// Runs `serve` on a thread of its own with a one-worker runtime named `name`, and returns the
/// first value it sends back (its address, say).
pub fn on_own_runtime<T, F>(name: &str, serve: impl FnOnce(std::sync::mpsc::Sender<T>) -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(serve(tx));
    });
    rx.recv().expect("started")
}

/// Builds a gateway from `config` on a fresh database and serves it, plus whatever routes
/// `prepare` returns (it may also start background tasks on the state). Returns the base URL
/// and the bootstrap admin token.
pub fn serve_gateway(
    config: Config,
    prepare: impl FnOnce(&AppState) -> axum::Router + Send + 'static,
) -> (String, String) {
    let http = config.http.clone();
    on_own_runtime("gateway", |tx| async move {
        let state = rdev::app::build(config).await.unwrap();
        let extra = prepare(&state);
        let token = rdev::app::bootstrap_admin(&state)
            .await
            .unwrap()
            .expect("fresh database");
        let app = rdev::http::router(state).merge(extra);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tx.send((format!("http://{}", listener.local_addr().unwrap()), token))
            .unwrap();
        rdev::http::server::serve(listener, app, http, Default::default()).await;
    })
}
