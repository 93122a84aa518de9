//! Routing by `:path` (`/package.Service/Method`) to a registered service and method index.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::Service;
use crate::status::Status;

/// Registered services, looked up by the request path.
#[derive(Default)]
pub(crate) struct Router {
    routes: HashMap<Box<str>, (usize, usize), BuildHasherDefault<Fnv>>,
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

/// FNV-1a: the route table holds our own paths, so it needs no defence against chosen collisions
/// (a miss costs one probe more), and it hashes a short path several times faster than SipHash.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}
