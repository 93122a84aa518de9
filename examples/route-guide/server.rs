//! `route-guide-server [--addr ADDR] [--db FILE]`: the route guide over a JSON feature database
//! (by default the one shipped beside this file, built into the binary).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rgrpc::{Request, Response, ResponseStream, Server, Status, Streaming};
use rgrpc_examples::route_guide::{
    Feature, Point, Rectangle, RouteGuide, RouteGuideServer, RouteNote, RouteSummary,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct DbFeature {
    name: String,
    location: DbPoint,
}

#[derive(Deserialize)]
struct DbPoint {
    latitude: i32,
    longitude: i32,
}

struct Guide {
    features: Arc<Vec<Feature>>,
}

fn in_rectangle(p: &Point, r: &Rectangle) -> bool {
    let (lo, hi) = (r.lo.unwrap_or_default(), r.hi.unwrap_or_default());
    let (left, right) = (
        lo.longitude.min(hi.longitude),
        lo.longitude.max(hi.longitude),
    );
    let (bottom, top) = (lo.latitude.min(hi.latitude), lo.latitude.max(hi.latitude));
    (left..=right).contains(&p.longitude) && (bottom..=top).contains(&p.latitude)
}

/// Great-circle distance in metres (haversine, Earth radius 6371 km).
fn distance(a: &Point, b: &Point) -> f64 {
    const E7: f64 = 1e7;
    const R: f64 = 6_371_000.0;
    let (lat1, lat2) = (
        (f64::from(a.latitude) / E7).to_radians(),
        (f64::from(b.latitude) / E7).to_radians(),
    );
    let dlat = lat2 - lat1;
    let dlon = (f64::from(b.longitude) / E7 - f64::from(a.longitude) / E7).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    R * 2.0 * h.sqrt().atan2((1.0 - h).sqrt())
}

impl Guide {
    fn feature_at(&self, point: &Point) -> Option<&Feature> {
        self.features
            .iter()
            .find(|f| f.location.as_ref() == Some(point) && !f.name.is_empty())
    }
}

impl RouteGuide for Guide {
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        let point = request.into_inner();
        let feature = self.feature_at(&point).cloned().unwrap_or(Feature {
            name: String::new(),
            location: Some(point),
        });
        Ok(Response::new(feature))
    }

    async fn list_features(
        &self,
        request: Request<Rectangle>,
    ) -> Result<Response<ResponseStream<Feature>>, Status> {
        let rect = request.into_inner();
        let found: Vec<Feature> = self
            .features
            .iter()
            .filter(|f| !f.name.is_empty())
            .filter(|f| f.location.as_ref().is_some_and(|p| in_rectangle(p, &rect)))
            .cloned()
            .collect();
        Ok(Response::new(ResponseStream::iter(found)))
    }

    async fn record_route(
        &self,
        request: Request<Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Status> {
        let mut points = request.into_inner();
        let started = Instant::now();
        let (mut count, mut features, mut metres) = (0, 0, 0.0);
        let mut last: Option<Point> = None;
        while let Some(point) = points.message().await? {
            count += 1;
            if self.feature_at(&point).is_some() {
                features += 1;
            }
            if let Some(prev) = &last {
                metres += distance(prev, &point);
            }
            last = Some(point);
        }
        Ok(Response::new(RouteSummary {
            point_count: count,
            feature_count: features,
            distance: metres as i32,
            elapsed_time: started.elapsed().as_secs() as i32,
        }))
    }

    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<ResponseStream<RouteNote>>, Status> {
        let mut notes = request.into_inner();
        let (tx, stream) = ResponseStream::channel(16);
        tokio::spawn(async move {
            // The notes of this chat, by location.
            let mut seen: HashMap<(i32, i32), Vec<RouteNote>> = HashMap::new();
            loop {
                match notes.message().await {
                    Ok(Some(note)) => {
                        let at = note.location.unwrap_or_default();
                        let earlier = seen.entry((at.latitude, at.longitude)).or_default();
                        for prior in earlier.iter() {
                            if tx.send(prior.clone()).await.is_err() {
                                return;
                            }
                        }
                        earlier.push(note);
                    }
                    Ok(None) => return,
                    Err(status) => return tx.fail(status).await,
                }
            }
        });
        Ok(Response::new(stream))
    }
}

fn load(text: &str) -> Result<Vec<Feature>, serde_json::Error> {
    let db: Vec<DbFeature> = serde_json::from_str(text)?;
    Ok(db
        .into_iter()
        .map(|f| Feature {
            name: f.name,
            location: Some(Point {
                latitude: f.location.latitude,
                longitude: f.location.longitude,
            }),
        })
        .collect())
}

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse(
        "[::]:50051",
        &["db"],
        "route-guide-server [--addr ADDR] [--db FILE]",
    );
    let text = match args.value("db") {
        Some(path) => std::fs::read_to_string(path).unwrap_or_else(|e| {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }),
        None => include_str!("features.json").to_owned(),
    };
    let features = load(&text).unwrap_or_else(|e| {
        eprintln!("the feature database is not valid: {e}");
        std::process::exit(1);
    });
    let guide = Guide {
        features: Arc::new(features),
    };
    rgrpc_examples::serve(
        Server::builder().add_service(RouteGuideServer::new(guide)),
        &args.addr,
        rgrpc_examples::route_guide::FILE_DESCRIPTOR_SET,
    )
    .await;
}
