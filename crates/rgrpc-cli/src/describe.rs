//! Descriptors printed back as proto-like source: services with their methods, messages with
//! their fields (oneofs and maps included), enums with their values.

use std::fmt::Write as _;

use prost_reflect::{
    Cardinality, DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ServiceDescriptor,
};

/// The source of a service, method, message or enum, if the pool knows it.
pub(crate) fn symbol(pool: &DescriptorPool, name: &str) -> Option<String> {
    let name = name.trim_start_matches('.');
    if let Some(s) = pool.get_service_by_name(name) {
        return Some(service(&s));
    }
    if let Some(m) = pool.get_message_by_name(name) {
        let mut out = String::new();
        message(&m, "", &mut out);
        return Some(out);
    }
    if let Some(e) = pool.get_enum_by_name(name) {
        let mut out = String::new();
        enumeration(&e, "", &mut out);
        return Some(out);
    }
    let (parent, member) = name.rsplit_once('.')?;
    let s = pool.get_service_by_name(parent)?;
    let m = s.methods().find(|m| m.name() == member)?;
    Some(format!("{}\n", method(&m)))
}

fn service(s: &ServiceDescriptor) -> String {
    let mut out = format!("// {}\nservice {} {{\n", s.full_name(), s.name());
    for m in s.methods() {
        let _ = writeln!(out, "  {}", method(&m));
    }
    out.push_str("}\n");
    out
}

fn method(m: &MethodDescriptor) -> String {
    let stream = |yes: bool| if yes { "stream " } else { "" };
    format!(
        "rpc {}({}.{}) returns ({}.{});",
        m.name(),
        stream(m.is_client_streaming()),
        m.input().full_name(),
        stream(m.is_server_streaming()),
        m.output().full_name()
    )
    .replace("(.", "(")
    .replace("(stream .", "(stream ")
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
    }
}

fn field(f: &FieldDescriptor) -> String {
    let kind = f.kind();
    let ty = if f.is_map() {
        let entry = kind
            .as_message()
            .expect("a map field's kind is its entry message");
        format!(
            "map<{}, {}>",
            kind_name(&entry.map_entry_key_field().kind()),
            kind_name(&entry.map_entry_value_field().kind())
        )
    } else {
        let label = match f.cardinality() {
            Cardinality::Repeated => "repeated ",
            Cardinality::Required => "required ",
            Cardinality::Optional
                if f.supports_presence()
                    && f.containing_oneof().is_none()
                    && kind.as_message().is_none() =>
            {
                "optional "
            }
            Cardinality::Optional => "",
        };
        format!("{label}{}", kind_name(&kind))
    };
    format!("{ty} {} = {};", f.name(), f.number())
}

fn message(m: &MessageDescriptor, indent: &str, out: &mut String) {
    let _ = writeln!(out, "{indent}message {} {{", m.name());
    let inner = format!("{indent}  ");
    for e in m.child_enums() {
        enumeration(&e, &inner, out);
    }
    for n in m.child_messages().filter(|n| !n.is_map_entry()) {
        message(&n, &inner, out);
    }
    let mut seen_oneofs = Vec::new();
    for f in m.fields() {
        match f.containing_oneof().filter(|o| !o.is_synthetic()) {
            Some(o) => {
                if seen_oneofs.contains(&o.name().to_owned()) {
                    continue;
                }
                seen_oneofs.push(o.name().to_owned());
                let _ = writeln!(out, "{inner}oneof {} {{", o.name());
                for of in o.fields() {
                    let _ = writeln!(out, "{inner}  {}", field(&of));
                }
                let _ = writeln!(out, "{inner}}}");
            }
            None => {
                let _ = writeln!(out, "{inner}{}", field(&f));
            }
        }
    }
    let _ = writeln!(out, "{indent}}}");
}

fn enumeration(e: &EnumDescriptor, indent: &str, out: &mut String) {
    let _ = writeln!(out, "{indent}enum {} {{", e.name());
    for v in e.values() {
        let _ = writeln!(out, "{indent}  {} = {};", v.name(), v.number());
    }
    let _ = writeln!(out, "{indent}}}");
}
