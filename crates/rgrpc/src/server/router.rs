//! Routing by `:path` (`/package.Service/Method`) to a registered service and method index.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::Service;
use crate::status::Status;

/// Registered services, looked up by the request path.
#[derive(Default)]
pub(crate) struct Router {
    routes: HashMap<Box<str>, (usize, usize), BuildHasherDefault<PathHash>>,
    services: Vec<Arc<dyn Service>>,
}

impl Router {
    /// Adds a service; a service of the same name replaces the earlier one.
    pub(crate) fn add(&mut self, service: Arc<dyn Service>) {
        let name = service.name();
        let index = match self.services.iter().position(|s| s.name() == name) {
            Some(i) => {
                self.routes.retain(|_, (s, _)| *s != i);
                self.services[i] = service;
                i
            }
            None => {
                self.services.push(service);
                self.services.len() - 1
            }
        };
        let service = &self.services[index];
        for (m, method) in service.methods().iter().enumerate() {
            self.routes
                .insert(format!("/{name}/{method}").into_boxed_str(), (index, m));
        }
    }

    /// The service and method index for a path, or the UNIMPLEMENTED status to answer with.
    pub(crate) fn route(&self, path: &str) -> Result<(&Arc<dyn Service>, usize), Status> {
        if let Some(&(s, m)) = self.routes.get(path) {
            return Ok((&self.services[s], m));
        }
        let mut parts = path.strip_prefix('/').unwrap_or(path).splitn(2, '/');
        let service = parts.next().unwrap_or("");
        let method = parts.next().unwrap_or("");
        if self.services.iter().any(|s| s.name() == service) {
            Err(Status::unimplemented(format!(
                "unknown method {method} for service {service}"
            )))
        } else {
            Err(Status::unimplemented(format!("unknown service {service}")))
        }
    }

    /// Names of the registered services.
    pub(crate) fn service_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.services.iter().map(|s| s.name())
    }
}

/// A word-at-a-time multiplicative hash (the shape of rustc's FxHash): the route table holds our
/// own paths, so it needs no defence against chosen collisions (a miss costs one probe more), and
/// a 30-byte path takes four multiplications instead of SipHash's rounds or FNV's one per byte.
#[derive(Default)]
struct PathHash(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl PathHash {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for PathHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{BoxFuture, ServerCall};

    struct Named(&'static str, &'static [&'static str]);

    impl Service for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn methods(&self) -> &'static [&'static str] {
            self.1
        }
        fn call(&self, _: usize, _: ServerCall) -> BoxFuture<crate::Code> {
            unreachable!("routing only")
        }
    }

    fn route(router: &Router, path: &str) -> Result<(&'static str, usize), String> {
        router
            .route(path)
            .map(|(s, m)| (s.name(), m))
            .map_err(|status| status.message().to_string())
    }

    #[test]
    fn paths_of_every_length_find_their_method() {
        let mut router = Router::default();
        // Names whose paths end on and off an 8-byte boundary, and share long prefixes.
        router.add(Arc::new(Named(
            "a.B",
            &["C", "CC", "CCCCCCCC", "CCCCCCCCC"],
        )));
        router.add(Arc::new(Named(
            "helloworld.Greeter",
            &["SayHello", "SayHelloAgain"],
        )));
        assert_eq!(route(&router, "/a.B/C"), Ok(("a.B", 0)));
        assert_eq!(route(&router, "/a.B/CC"), Ok(("a.B", 1)));
        assert_eq!(route(&router, "/a.B/CCCCCCCC"), Ok(("a.B", 2)));
        assert_eq!(route(&router, "/a.B/CCCCCCCCC"), Ok(("a.B", 3)));
        assert_eq!(
            route(&router, "/helloworld.Greeter/SayHelloAgain"),
            Ok(("helloworld.Greeter", 1))
        );
        assert_eq!(
            route(&router, "/helloworld.Greeter/SayHell"),
            Err("unknown method SayHell for service helloworld.Greeter".into())
        );
        assert_eq!(
            route(&router, "/a.B/C\0"),
            Err("unknown method C\0 for service a.B".into())
        );
        assert_eq!(
            route(&router, "/nope.Nope/C"),
            Err("unknown service nope.Nope".into())
        );
    }

    #[test]
    fn a_service_added_twice_replaces_the_first() {
        let mut router = Router::default();
        router.add(Arc::new(Named("a.B", &["Old", "Both"])));
        router.add(Arc::new(Named("a.B", &["Both", "New"])));
        assert_eq!(route(&router, "/a.B/Both"), Ok(("a.B", 0)));
        assert_eq!(route(&router, "/a.B/New"), Ok(("a.B", 1)));
        assert!(route(&router, "/a.B/Old").is_err());
        assert_eq!(router.service_names().count(), 1);
    }
}
