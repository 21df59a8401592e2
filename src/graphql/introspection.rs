//! Introspection per token: where introspection is off (production), a token holding the configured scope may still
//! introspect and read `_service`, answered from the schema cut down to what its scopes can ever read
//! (`authz::rules::schema_field`, `schema_type`), so GraphiQL documents and completes exactly those fields.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use async_graphql::dynamic::{
    self, Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, Scalar, SubscriptionField,
    SubscriptionFieldFuture, TypeRef,
};
use async_graphql::parser::types::{
    BaseType, ConstDirective, DocumentOperations, ExecutableDocument, FieldDefinition, InputValueDefinition,
    OperationType, Selection, SelectionSet, Type, TypeDefinition, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Positioned, ServerError};

use super::errors::ErrorCode;
use super::pipeline::{limits, Bounds};
use crate::auth::Principal;
use crate::authz::{rules, Declared};
use kyc_vocabulary::with_details_fields;

/// How many cut-down schemas are kept (one per distinct set of visible fields, not per token).
const CACHED_SCHEMAS: usize = 32;
/// The root fields that read the schema rather than data.
const SCHEMA_FIELDS: [&str; 3] = ["__schema", "__type", "_service"];
const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

macro_rules! details_items {
    ($( $name:ident : $ty:ty = $fmt:ident $( ( $($choice:ident),+ ) )? [$($item:ident),+] $restr:ident $doc:literal; )*) => {
        /// The items a `VerificationDetails` field (`camelCase`, as GraphQL names it) belongs to: the list the
        /// resolvers check, whose names are `snake_case`; compared without underscores or case.
        fn details_items(field: &str) -> &'static [&'static str] {
            let plain = |name: &str| name.chars().filter(|c| *c != '_').map(|c| c.to_ascii_lowercase()).collect::<String>();
            let field = plain(field);
            $( if field == plain(stringify!($name)) { return &[$(stringify!($item)),+]; } )*
            &[]
        }
    };
}
with_details_fields!(details_items);

/// The schema's types, the scope that opens introspection, and the cut-down schemas built so far.
pub struct Introspection {
    scope: Option<String>,
    types: Vec<TypeDefinition>,
    declared: Arc<Declared>,
    built: Mutex<HashMap<Vec<bool>, Arc<dynamic::Schema>>>,
}

impl Introspection {
    /// From the server's own SDL; `scope` `None`: no token introspects this way.
    pub fn new(sdl: &str, declared: Arc<Declared>, scope: Option<String>) -> Self {
        let document = async_graphql::parser::parse_schema(sdl).expect("the server's own SDL parses");
        let types = document
            .definitions
            .into_iter()
            .filter_map(|d| match d {
                TypeSystemDefinition::Type(t) => Some(t.node),
                _ => None,
            })
            .collect();
        Introspection { scope, types, declared, built: Mutex::new(HashMap::new()) }
    }

    /// The schema to answer this operation from, when it reads only the schema and the token may introspect; an
    /// error when it mixes schema and data fields or breaks a bound. `None`: the operation takes the usual path. The
    /// document is the one the trusted-documents stage lets run, pre-scanned and bounded like any other.
    pub async fn route(
        &self,
        p: &Principal,
        request: &mut async_graphql::Request,
        bounds: &Bounds,
    ) -> Option<Result<Arc<dynamic::Schema>, ServerError>> {
        let scope = self.scope.as_deref()?;
        if !p.has(scope) {
            return None;
        }
        // A refused document takes the usual path, which refuses it the same way.
        bounds.trusted.resolve(request).await.ok()?;
        let query = request.query.as_str();
        if !SCHEMA_FIELDS.iter().any(|f| query.contains(f)) {
            return None;
        }
        if let Err(refusal) = limits::prescan(query, &bounds.limits) {
            return Some(Err(limits::refused(refusal)));
        }
        let document = async_graphql::parser::parse_query(query).ok()?;
        let aliases = limits::aliases(&document);
        if aliases > bounds.limits.max_aliases {
            let max = bounds.limits.max_aliases as u64;
            let refusal = limits::Refused::new(ErrorCode::AliasLimitExceeded, "aliases:", aliases as u64, max);
            return Some(Err(limits::refused(refusal)));
        }
        let roots = root_fields(&document, request.operation_name.as_deref())?;
        let schema_reads = roots.iter().filter(|f| SCHEMA_FIELDS.contains(&f.as_str())).count();
        let other = roots.iter().filter(|f| !SCHEMA_FIELDS.contains(&f.as_str()) && *f != "__typename").count();
        match (schema_reads, other) {
            (0, _) => None,
            (_, 0) => Some(self.schema_for(p)),
            _ => {
                let mut error =
                    ServerError::new("introspection runs in an operation of its own, without data fields", None);
                error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadRequest.as_str());
                Some(Err(error))
            }
        }
    }

    /// The schema cut down to what `p` can ever read, built once per distinct cut.
    pub fn schema_for(&self, p: &Principal) -> Result<Arc<dynamic::Schema>, ServerError> {
        let cut = Cut::of(self, p);
        let key = cut.key(self);
        if let Some(schema) = self.built.lock().expect("introspection cache").get(&key) {
            return Ok(schema.clone());
        }
        let schema = Arc::new(cut.build(self).map_err(|e| {
            let mut error = ServerError::new(format!("this token's scopes read nothing of the schema ({e})"), None);
            error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadRequest.as_str());
            error
        })?);
        let mut built = self.built.lock().expect("introspection cache");
        if built.len() >= CACHED_SCHEMAS {
            built.clear();
        }
        built.insert(key, schema.clone());
        Ok(schema)
    }
}

/// The names of the root fields of the operation that runs (fragments followed); `None` for a mutation, a
/// subscription, or no such operation.
fn root_fields(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<Vec<String>> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => &op.node,
        (DocumentOperations::Multiple(ops), Some(name)) => &ops.get(name)?.node,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => &ops.values().next()?.node,
        _ => return None,
    };
    if operation.ty != OperationType::Query {
        return None;
    }
    let mut names = Vec::new();
    collect(document, &operation.selection_set.node, &mut names, 0);
    Some(names)
}

fn collect(document: &ExecutableDocument, set: &SelectionSet, names: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        names.push("<nested fragments>".into());
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => names.push(field.node.name.node.to_string()),
            Selection::InlineFragment(inline) => collect(document, &inline.node.selection_set.node, names, depth + 1),
            Selection::FragmentSpread(spread) => match document.fragments.get(&spread.node.fragment_name.node) {
                Some(fragment) => collect(document, &fragment.node.selection_set.node, names, depth + 1),
                None => names.push("<unknown fragment>".into()),
            },
        }
    }
}

fn base_name(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => base_name(inner),
    }
}

fn type_ref(ty: &Type) -> TypeRef {
    let base = match &ty.base {
        BaseType::Named(name) => TypeRef::Named(name.to_string().into()),
        BaseType::List(inner) => TypeRef::List(Box::new(type_ref(inner))),
    };
    match ty.nullable {
        true => base,
        false => TypeRef::NonNull(Box::new(base)),
    }
}

fn deprecation(directives: &[Positioned<ConstDirective>]) -> Option<Option<String>> {
    let deprecated = directives.iter().find(|d| d.node.name.node == "deprecated")?;
    Some(deprecated.node.get_argument("reason").and_then(|r| match &r.node {
        async_graphql::Value::String(reason) => Some(reason.clone()),
        _ => None,
    }))
}

/// Which types and fields one principal sees: fields it may read whose types it may read, objects with at least one
/// such field, and only what is reachable from the roots.
struct Cut {
    fields: HashMap<String, HashSet<String>>,
    types: HashSet<String>,
}

impl Cut {
    fn of(all: &Introspection, p: &Principal) -> Cut {
        let by_name: HashMap<&str, &TypeDefinition> = all.types.iter().map(|t| (t.name.node.as_str(), t)).collect();
        let mut hidden: HashSet<String> =
            all.types.iter().map(|t| t.name.node.to_string()).filter(|name| !rules::schema_type(p, name)).collect();
        let visible_fields = |t: &TypeDefinition, hidden: &HashSet<String>| -> HashSet<String> {
            let TypeKind::Object(object) = &t.kind else { return HashSet::new() };
            let name = t.name.node.as_str();
            object
                .fields
                .iter()
                .map(|f| &f.node)
                .filter(|f| !hidden.contains(base_name(&f.ty.node)))
                .filter(|f| f.arguments.iter().all(|a| !hidden.contains(base_name(&a.node.ty.node))))
                .filter(|f| {
                    let field = f.name.node.as_str();
                    let items = if name == "VerificationDetails" { details_items(field) } else { &[] };
                    rules::schema_field(p, &all.declared, name, field, items)
                })
                .map(|f| f.name.node.to_string())
                .collect()
        };
        // An object left without a field is hidden, which may empty the objects whose fields returned it.
        loop {
            let emptied: Vec<String> = all
                .types
                .iter()
                .filter(|t| matches!(t.kind, TypeKind::Object(_)) && !hidden.contains(t.name.node.as_str()))
                .filter(|t| visible_fields(t, &hidden).is_empty())
                .map(|t| t.name.node.to_string())
                .collect();
            if emptied.is_empty() {
                break;
            }
            hidden.extend(emptied);
        }
        let mut cut = Cut { fields: HashMap::new(), types: HashSet::new() };
        let mut queue: VecDeque<&str> =
            ["Query", "Mutation", "Subscription"].into_iter().filter(|r| !hidden.contains(*r)).collect();
        while let Some(name) = queue.pop_front() {
            let Some(t) = by_name.get(name) else { continue };
            if !cut.types.insert(name.to_owned()) {
                continue;
            }
            let mut refer = |ty: &Type| {
                let named = base_name(ty);
                if !BUILT_IN_SCALARS.contains(&named) && !cut.types.contains(named) {
                    queue.push_back(by_name.get(named).map_or("", |t| t.name.node.as_str()));
                }
            };
            match &t.kind {
                TypeKind::Object(object) => {
                    let fields = visible_fields(t, &hidden);
                    for f in object.fields.iter().map(|f| &f.node).filter(|f| fields.contains(f.name.node.as_str())) {
                        refer(&f.ty.node);
                        f.arguments.iter().for_each(|a| refer(&a.node.ty.node));
                    }
                    cut.fields.insert(name.to_owned(), fields);
                }
                TypeKind::InputObject(input) => input.fields.iter().for_each(|f| refer(&f.node.ty.node)),
                _ => {}
            }
        }
        cut
    }

    /// One flag per field of the full schema, in its order: equal cuts share one built schema.
    fn key(&self, all: &Introspection) -> Vec<bool> {
        let mut key = Vec::new();
        for t in &all.types {
            key.push(self.types.contains(t.name.node.as_str()));
            if let TypeKind::Object(object) = &t.kind {
                let fields = self.fields.get(t.name.node.as_str());
                key.extend(object.fields.iter().map(|f| fields.is_some_and(|v| v.contains(f.node.name.node.as_str()))));
            }
        }
        key
    }

    fn build(&self, all: &Introspection) -> Result<dynamic::Schema, dynamic::SchemaError> {
        let has = |root: &'static str| self.types.contains(root).then_some(root);
        let mut schema = dynamic::Schema::build("Query", has("Mutation"), has("Subscription"))
            .limit_depth(15)
            .limit_recursive_depth(32)
            .limit_directives(8)
            .disable_suggestions()
            .enable_federation();
        for t in all.types.iter().filter(|t| self.types.contains(t.name.node.as_str())) {
            let name = t.name.node.as_str();
            let description = t.description.as_ref().map(|d| d.node.clone());
            schema = match &t.kind {
                TypeKind::Object(object) if name == "Subscription" => {
                    let mut root = dynamic::Subscription::new(name);
                    for f in self.visible(name, &object.fields) {
                        root = root.field(subscription_field(f));
                    }
                    schema.register(described(root, description, dynamic::Subscription::description))
                }
                TypeKind::Object(object) => {
                    let mut o = Object::new(name);
                    for f in self.visible(name, &object.fields) {
                        o = o.field(field(f));
                    }
                    schema.register(described(o, description, Object::description))
                }
                TypeKind::InputObject(input) => {
                    let mut o = InputObject::new(name);
                    for f in &input.fields {
                        o = o.field(input_value(&f.node));
                    }
                    schema.register(described(o, description, InputObject::description))
                }
                TypeKind::Enum(e) => {
                    let mut items = Enum::new(name);
                    for v in &e.values {
                        let mut item = EnumItem::new(v.node.value.node.as_str());
                        if let Some(d) = &v.node.description {
                            item = item.description(d.node.clone());
                        }
                        if let Some(reason) = deprecation(&v.node.directives) {
                            item = item.deprecation(reason.as_deref());
                        }
                        items = items.item(item);
                    }
                    schema.register(described(items, description, Enum::description))
                }
                TypeKind::Scalar => schema.register(described(Scalar::new(name), description, Scalar::description)),
                // The schema has no interfaces or unions; were one added, it would be left out, never shown whole.
                TypeKind::Interface(_) | TypeKind::Union(_) => schema,
            };
        }
        schema.finish()
    }

    fn visible<'a>(
        &'a self,
        type_name: &str,
        fields: &'a [Positioned<FieldDefinition>],
    ) -> impl Iterator<Item = &'a FieldDefinition> + 'a {
        let shown = self.fields.get(type_name);
        fields.iter().map(|f| &f.node).filter(move |f| shown.is_some_and(|s| s.contains(f.name.node.as_str())))
    }
}

fn described<T>(value: T, description: Option<String>, describe: fn(T, String) -> T) -> T {
    match description {
        Some(d) => describe(value, d),
        None => value,
    }
}

fn input_value(v: &InputValueDefinition) -> InputValue {
    let mut input = InputValue::new(v.name.node.as_str(), type_ref(&v.ty.node));
    if let Some(d) = &v.description {
        input = input.description(d.node.clone());
    }
    if let Some(default) = &v.default_value {
        input = input.default_value(default.node.clone());
    }
    input
}

fn field(f: &FieldDefinition) -> Field {
    // Never resolved: the schema answers introspection only (`Introspection::route`).
    let mut field =
        Field::new(f.name.node.as_str(), type_ref(&f.ty.node), |_| FieldFuture::new(async { Ok(None::<FieldValue>) }));
    for a in &f.arguments {
        field = field.argument(input_value(&a.node));
    }
    if let Some(d) = &f.description {
        field = field.description(d.node.clone());
    }
    if let Some(reason) = deprecation(&f.directives) {
        field = field.deprecation(reason.as_deref());
    }
    field
}

fn subscription_field(f: &FieldDefinition) -> SubscriptionField {
    let mut field = SubscriptionField::new(f.name.node.as_str(), type_ref(&f.ty.node), |_| {
        SubscriptionFieldFuture::new(async {
            Ok(futures_util::stream::empty::<async_graphql::Result<FieldValue<'static>>>())
        })
    });
    for a in &f.arguments {
        field = field.argument(input_value(&a.node));
    }
    if let Some(d) = &f.description {
        field = field.description(d.node.clone());
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_details_field_of_the_schema_knows_its_items() {
        let sdl = crate::graphql::sdl();
        let all = Introspection::new(&sdl, Arc::new(Declared::from_sdl(&sdl)), None);
        let details = all.types.iter().find(|t| t.name.node == "VerificationDetails").expect("the type");
        let TypeKind::Object(object) = &details.kind else { panic!("an object") };
        assert!(object.fields.len() > 10);
        for f in &object.fields {
            assert!(!details_items(&f.node.name.node).is_empty(), "{}", f.node.name.node);
        }
        assert_eq!(details_items("dateOfBirth"), ["plus", "basic"]);
    }
}
