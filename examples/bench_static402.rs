//! The physical anchor of the challenge benchmark (`bench/challenge.sh`): a bare hyper HTTP/1
//! server that reads each request's body and answers the same static 402 bytes the gateway
//! sends (status, the gateway's own headers, body), on one tokio worker thread like the
//! gateway's bench config. No routing, no middleware, no pricing: what any server must spend
//! at least to receive a request and send that answer on this machine.
//!
//! Usage: `bench_static402 ADDR HEADERS_FILE BODY_FILE`, where HEADERS_FILE is a
//! `curl -D` dump of one gateway 402 (status line and `date`, `content-length`, `connection`
//! and `transfer-encoding` are skipped: hyper writes its own).

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: bench_static402 ADDR HEADERS_FILE BODY_FILE");
        std::process::exit(2);
    }
    let dump = std::fs::read_to_string(&args[2]).expect("headers file");
    let body = Bytes::from(std::fs::read(&args[3]).expect("body file"));
    let mut headers = HeaderMap::new();
    for line in dump.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "date" | "content-length" | "connection" | "transfer-encoding"
        ) {
            continue;
        }
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value.trim()).expect("header value"),
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(serve(args[1].clone(), headers, body));
}

async fn serve(addr: String, headers: HeaderMap, body: Bytes) {
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (headers, body) = (headers.clone(), body.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let (headers, body) = (headers.clone(), body.clone());
                async move {
                    // Read the request body, as any server that prices by content must.
                    let _ = req.into_body().collect().await;
                    let mut res = Response::new(Full::new(body));
                    *res.status_mut() = StatusCode::PAYMENT_REQUIRED;
                    *res.headers_mut() = headers;
                    Ok::<_, Infallible>(res)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
