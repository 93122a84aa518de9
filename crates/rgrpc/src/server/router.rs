//! Routing by `:path` (`/package.Service/Method`) to a registered service and method index.

use std::collections::HashMap;
use std::sync::Arc;

use super::Service;
use crate::status::Status;

/// Registered services, looked up by the request path.
#[derive(Default)]
pub(crate) struct Router {
    routes: HashMap<Box<str>, (usize, usize)>,
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
