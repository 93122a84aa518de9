//! What the example programs share: the generated code of each example, command-line flags,
//! serving until Ctrl-C, and Python's way of printing a float.

#![allow(missing_docs)]

use std::future::Future;

pub mod user_info {
    include!(concat!(env!("OUT_DIR"), "/user-info/hello.rs"));
    /// The encoded descriptors of this example's protos, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/user-info/fds.bin"));
}
pub mod calculator {
    include!(concat!(env!("OUT_DIR"), "/calculator/_.rs"));
    /// The encoded descriptors of this example's protos, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/calculator/fds.bin"));
}
pub mod greeter {
    include!(concat!(env!("OUT_DIR"), "/greeter/helloworld.rs"));
    /// The encoded descriptors of this example's protos, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/greeter/fds.bin"));
}
pub mod file_controller {
    include!(concat!(env!("OUT_DIR"), "/file-controller/muxs.rs"));
    /// The encoded descriptors of this example's protos, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/file-controller/fds.bin"));
}
pub mod grpc_service {
    include!(concat!(env!("OUT_DIR"), "/grpc-service/_.rs"));
    /// The encoded descriptors of this example's protos, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/grpc-service/fds.bin"));
}
pub mod secure_greeter {
    include!(concat!(env!("OUT_DIR"), "/secure-greeter/secure.rs"));
    /// The encoded descriptors of this example's protos, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/secure-greeter/fds.bin"));
}
pub mod route_guide {
    include!(concat!(env!("OUT_DIR"), "/route-guide/routeguide.rs"));
    /// The encoded descriptors of this example's protos, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/route-guide/fds.bin"));
}

/// Flags every example takes: `--addr VALUE` and `--log`, then positional arguments.
#[derive(Debug, Clone)]
pub struct Args {
    pub addr: String,
    pub log: bool,
    pub named: Vec<(String, String)>,
    pub positional: Vec<String>,
}

impl Args {
    /// Parses the process arguments; `value_flags` take a value (`--root DIR`), `--addr` always
    /// does. Exits with a usage line on a bad flag.
    pub fn parse(default_addr: &str, value_flags: &[&str], usage: &str) -> Args {
        let mut args = Args {
            addr: default_addr.to_owned(),
            log: false,
            named: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            match flag.as_str() {
                "--addr" => args.addr = inline.or_else(|| it.next()).unwrap_or_else(|| fail(usage)),
                "--log" => args.log = true,
                "-h" | "--help" => {
                    println!("usage: {usage}");
                    std::process::exit(0);
                }
                f if value_flags.contains(&f.trim_start_matches('-')) => {
                    let v = inline.or_else(|| it.next()).unwrap_or_else(|| fail(usage));
                    args.named.push((f.trim_start_matches('-').to_owned(), v));
                }
                f if f.starts_with("--") => fail(usage),
                _ => args.positional.push(arg),
            }
        }
        args
    }

    /// The value of a flag named in `value_flags`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn fail(usage: &str) -> ! {
    eprintln!("usage: {usage}");
    std::process::exit(2);
}

/// Completes on Ctrl-C or SIGTERM, to start a graceful shutdown.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Serves `builder` on `addr`, with server reflection (v1 and v1alpha) over the example's
/// descriptors and the health service reporting its services SERVING, until Ctrl-C or SIGTERM;
/// on shutdown health turns NOT_SERVING first. Exits the process on a bind error.
pub async fn serve(builder: rgrpc::server::Builder, addr: &str, descriptors: &[u8]) {
    let reflection =
        rgrpc_reflection::Reflection::from_sets(&[descriptors, rgrpc_health::FILE_DESCRIPTOR_SET])
            .expect("the build wrote valid descriptors");
    let (reporter, health) = rgrpc_health::service();
    for service in reflection.services() {
        reporter.set_serving(service);
    }
    let builder = builder
        .add_service(reflection.v1())
        .add_service(reflection.v1alpha())
        .add_service(health)
        .on_shutdown(move || reporter.set_all_not_serving());
    eprintln!("listening on {addr}");
    if let Err(err) = builder.serve_with_shutdown(addr, shutdown_signal()).await {
        eprintln!("server error: {err}");
        std::process::exit(1);
    }
}

/// Runs a client's body; on an error prints the gRPC code and message and exits with 1.
pub async fn run_client<F, Fut>(body: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), Box<dyn std::error::Error>>>,
{
    if let Err(err) = body().await {
        match err.downcast_ref::<rgrpc::Status>() {
            Some(status) => eprintln!("error: {}: {}", status.code(), status.message()),
            None => eprintln!("error: {err}"),
        }
        std::process::exit(1);
    }
}

/// A float as Python 3's `repr` prints it: the shortest digits that read back to the same value,
/// in positional notation for exponents from -4 to 15 and in scientific notation otherwise, with
/// `.0` on whole numbers.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `1.5198683738708496e1`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("numeric exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let text = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{text}")
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::py_float;

    #[test]
    fn floats_print_as_python_does() {
        assert_eq!(py_float(f64::from(231f32.sqrt())), "15.198683738708496");
        assert_eq!(py_float(15.0), "15.0");
        assert_eq!(py_float(-2.5), "-2.5");
        assert_eq!(py_float(0.1), "0.1");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(0.00001), "1e-05");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
        assert_eq!(py_float(1e15), "1000000000000000.0");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.2345678901234568e17), "1.2345678901234568e+17");
        assert_eq!(py_float(123.456), "123.456");
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(f64::NAN), "nan");
        assert_eq!(py_float(f64::NEG_INFINITY), "-inf");
    }
}
