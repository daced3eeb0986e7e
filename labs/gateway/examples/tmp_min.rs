use axum::body::Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lab_gateway::pool::Pool;
use std::sync::Arc;
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = Arc::new(Pool::new("127.0.0.1:18080", 256).unwrap());
        let l = tokio::net::TcpListener::bind("127.0.0.1:18091")
            .await
            .unwrap();
        loop {
            let (s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let pool = pool.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |r: hyper::Request<hyper::body::Incoming>| {
                    let pool = pool.clone();
                    async move {
                        let (parts, _b) = r.into_parts();
                        let mut req = hyper::Request::new(Body::empty());
                        *req.uri_mut() = parts.uri;
                        *req.headers_mut() = parts.headers;
                        let resp = pool.send(req).await.unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
}
