//! `route-guide-client [--addr URL]`: one call of each kind, with a fixed route and fixed notes so
//! that the output can be compared line for line with the Python twin's.

use rgrpc_examples::route_guide::{Point, Rectangle, RouteGuideClient, RouteNote};

fn point(latitude: i32, longitude: i32) -> Point {
    Point {
        latitude,
        longitude,
    }
}

fn at(p: &Option<Point>) -> String {
    let p = p.unwrap_or_default();
    format!("({}, {})", p.latitude, p.longitude)
}

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse(
        "http://localhost:50051",
        &[],
        "route-guide-client [--addr URL]",
    );
    rgrpc_examples::run_client(|| async move {
        let client = RouteGuideClient::connect(&args.addr).await?;

        // Unary: a point with a feature, and one without.
        for p in [point(410123457, -732012989), point(0, 0)] {
            let feature = client.get_feature(p).await?.into_inner();
            if feature.name.is_empty() {
                println!("GetFeature: no feature at {}", at(&feature.location));
            } else {
                println!(
                    "GetFeature: \"{}\" at {}",
                    feature.name,
                    at(&feature.location)
                );
            }
        }

        // Server streaming.
        let rect = Rectangle {
            lo: Some(point(400000000, -750000000)),
            hi: Some(point(410000000, -740000000)),
        };
        let mut features = client.list_features(rect).await?.into_inner();
        let mut n = 0;
        while let Some(f) = features.message().await? {
            println!("ListFeatures: \"{}\" at {}", f.name, at(&f.location));
            n += 1;
        }
        println!("ListFeatures: {n} features");

        // Client streaming: the first ten features, then two empty points.
        let route: Vec<Point> = [
            (401000000, -748000000),
            (410123457, -732012989),
            (405246914, -735025978),
            (414370371, -738038967),
            (409493828, -741051956),
            (404617285, -744064945),
            (413740742, -747077934),
            (408864199, -731090923),
            (403987656, -734103912),
            (413111113, -737116901),
            (402000000, -747000000),
            (402500000, -746500000),
        ]
        .into_iter()
        .map(|(lat, lon)| point(lat, lon))
        .collect();
        let summary = client
            .record_route(rgrpc::stream::iter(route))
            .await?
            .into_inner();
        println!(
            "RecordRoute: {} points, {} features, {} metres",
            summary.point_count, summary.feature_count, summary.distance
        );

        // Bidirectional streaming.
        let notes: Vec<RouteNote> = [
            ("First message", 1),
            ("Second message", 2),
            ("Third message", 3),
            ("Fourth message", 1),
            ("Fifth message", 2),
            ("Sixth message", 3),
        ]
        .into_iter()
        .map(|(message, lon)| RouteNote {
            location: Some(point(0, lon)),
            message: message.into(),
        })
        .collect();
        let mut replies = client
            .route_chat(rgrpc::stream::iter(notes))
            .await?
            .into_inner();
        while let Some(note) = replies.message().await? {
            println!("RouteChat: \"{}\" at {}", note.message, at(&note.location));
        }
        Ok(())
    })
    .await;
}
