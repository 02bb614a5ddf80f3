//! Codec tests: fixed byte vectors in the shapes Terraform really sends (hand-assembled from the cty msgpack
//! and JSON specs), round trips for every type, error paths, and a property test over random (type, value)
//! pairs.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn obj_ty(attrs: &[(&str, Type)]) -> Type {
    Type::object(attrs.iter().cloned())
}

fn rt_msgpack(v: &Value, ty: &Type) -> Value {
    let bytes = encode_msgpack(v, ty).unwrap();
    decode_msgpack(&bytes, ty).unwrap()
}

fn rt_json(v: &Value, ty: &Type) -> Value {
    let bytes = encode_json(v, ty).unwrap();
    decode_json(&bytes, ty).unwrap()
}

// ---- fixed vectors -------------------------------------------------------------------------------

#[test]
fn planned_object_with_one_unknown_string_attr_has_ctys_exact_bytes() {
    // What Terraform sends in PlanResourceChange for {id = (known after apply), name = "x"}.
    let ty = obj_ty(&[("id", Type::String), ("name", Type::String)]);
    let wire = [
        0x82, 0xa2, b'i', b'd', 0xd4, 0x00, 0x00, 0xa4, b'n', b'a', b'm', b'e', 0xa1, b'x',
    ];
    let v = decode_msgpack(&wire, &ty).unwrap();
    assert_eq!(
        v,
        Value::object([("id", Value::Unknown), ("name", Value::string("x"))])
    );
    assert!(!v.is_wholly_known());
    assert!(v.is_known());
    assert_eq!(encode_msgpack(&v, &ty).unwrap(), wire);
}

#[test]
fn refined_unknown_with_payload_decodes_as_unknown() {
    // cty >= 1.13 sends "unknown, but not null" as extension 12 carrying a refinement map {1: true}.
    let wire = [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3];
    assert_eq!(
        decode_msgpack(&wire, &Type::String).unwrap(),
        Value::Unknown
    );
    // Inside an object as well.
    let ty = obj_ty(&[("url", Type::String)]);
    let wire = [
        0x81, 0xa3, b'u', b'r', b'l', 0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3,
    ];
    assert_eq!(
        decode_msgpack(&wire, &ty).unwrap(),
        Value::object([("url", Value::Unknown)])
    );
}

#[test]
fn null_resource_state_is_a_single_nil() {
    let ty = obj_ty(&[("id", Type::String)]);
    assert_eq!(decode_msgpack(&[0xc0], &ty).unwrap(), Value::Null);
    assert_eq!(encode_msgpack(&Value::Null, &ty).unwrap(), [0xc0]);
}

#[test]
fn known_dynamic_value_is_type_json_bytes_then_value() {
    let wire = [
        0x92, 0xc4, 0x08, b'"', b's', b't', b'r', b'i', b'n', b'g', b'"', 0xa2, b'h', b'i',
    ];
    let v = decode_msgpack(&wire, &Type::Dynamic).unwrap();
    assert_eq!(
        v,
        Value::Dynamic(Type::String, Box::new(Value::string("hi")))
    );
    assert_eq!(v.as_str(), Some("hi"));
    assert_eq!(encode_msgpack(&v, &Type::Dynamic).unwrap(), wire);
    // A bare value whose type can be inferred encodes the same way.
    assert_eq!(
        encode_msgpack(&Value::string("hi"), &Type::Dynamic).unwrap(),
        wire
    );
    // Typeless null and unknown are written without the wrapper.
    assert_eq!(
        encode_msgpack(&Value::Null, &Type::Dynamic).unwrap(),
        [0xc0]
    );
    assert_eq!(
        encode_msgpack(&Value::Unknown, &Type::Dynamic).unwrap(),
        [0xd4, 0, 0]
    );
    assert_eq!(
        decode_msgpack(&[0xc0], &Type::Dynamic).unwrap(),
        Value::Null
    );
}

#[test]
fn numbers_use_int_float_or_decimal_string_like_cty() {
    let enc = |n: Number| encode_msgpack(&Value::Number(n), &Type::Number).unwrap();
    assert_eq!(enc(Number::Int(22)), [22]);
    assert_eq!(enc(Number::Int(-1)), [0xff]);
    assert_eq!(enc(Number::Int(65536)), [0xce, 0x00, 0x01, 0x00, 0x00]);
    // Integral floats go out as ints, as cty does for any number that is an int64.
    assert_eq!(enc(Number::Float(5.0)), [5]);
    let mut half = vec![0xcb];
    half.extend_from_slice(&0.5f64.to_be_bytes());
    assert_eq!(enc(Number::Float(0.5)), half);
    let big = "123456789012345678901234567890";
    let mut want = vec![0xbe];
    want.extend_from_slice(big.as_bytes());
    assert_eq!(enc(Number::Big(big.into())), want);

    // Decoding: uint64 beyond i64 stays exact, strings parse, floats are canonicalised.
    let dec = |b: &[u8]| decode_msgpack(b, &Type::Number).unwrap();
    assert_eq!(
        dec(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Value::Number(Number::Big("18446744073709551615".into()))
    );
    assert_eq!(dec(&want), Value::Number(Number::Big(big.into())));
    assert_eq!(dec(&[0xa2, b'4', b'2']).as_i64(), Some(42));
    assert_eq!(dec(&half), Value::Number(Number::Float(0.5)));
    let mut five = vec![0xcb];
    five.extend_from_slice(&5.0f64.to_be_bytes());
    assert!(matches!(dec(&five), Value::Number(Number::Int(5))));
}

#[test]
fn number_equality_is_by_value_text() {
    assert_eq!(Number::Float(5.0), Number::Int(5));
    assert_eq!(Number::Float(0.25), Number::Big("0.25".into()));
    assert_ne!(Number::Int(1), Number::Int(2));
    assert_eq!(Number::parse("01"), None);
    assert_eq!(Number::parse("1e400"), Some(Number::Big("1e400".into())));
    assert!(Value::float(f64::NAN).is_none());
}

#[test]
fn sets_lists_maps_and_tuples_have_the_expected_wire_shape() {
    let ty = obj_ty(&[
        ("l", Type::list(Type::String)),
        ("m", Type::map(Type::Bool)),
        ("s", Type::set(Type::Number)),
        ("t", Type::Tuple(vec![Type::String, Type::Bool])),
    ]);
    let v = Value::object([
        ("l", Value::list([Value::string("a")])),
        ("m", Value::map([("k", Value::Bool(true))])),
        ("s", Value::set([Value::int(1), Value::int(2)])),
        (
            "t",
            Value::Tuple(vec![Value::string("z"), Value::Bool(false)]),
        ),
    ]);
    let wire = [
        0x84, 0xa1, b'l', 0x91, 0xa1, b'a', 0xa1, b'm', 0x81, 0xa1, b'k', 0xc3, 0xa1, b's', 0x92,
        0x01, 0x02, 0xa1, b't', 0x92, 0xa1, b'z', 0xc2,
    ];
    assert_eq!(encode_msgpack(&v, &ty).unwrap(), wire);
    assert_eq!(decode_msgpack(&wire, &ty).unwrap(), v);
}

#[test]
fn omitted_object_attribute_decodes_as_null_and_is_written_as_nil() {
    let ty = obj_ty(&[("a", Type::String), ("b", Type::Bool)]);
    let v = decode_msgpack(&[0x81, 0xa1, b'a', 0xa1, b'x'], &ty).unwrap();
    assert_eq!(v.get_attr("b"), Some(&Value::Null));
    let partial = Value::object([("a", Value::string("x"))]);
    assert_eq!(
        encode_msgpack(&partial, &ty).unwrap(),
        [0x82, 0xa1, b'a', 0xa1, b'x', 0xa1, b'b', 0xc0]
    );
    assert_eq!(
        encode_json(&partial, &ty).unwrap(),
        br#"{"a":"x","b":null}"#
    );
}

#[test]
fn nested_lists_of_objects_with_nulls_and_unknowns_round_trip() {
    let item = obj_ty(&[
        ("name", Type::String),
        ("ports", Type::list(Type::Number)),
        ("meta", Type::map(Type::String)),
    ]);
    let ty = obj_ty(&[("items", Type::list(item.clone())), ("opt", item)]);
    let v = Value::object([
        (
            "items",
            Value::list([
                Value::object([
                    ("name", Value::string("web")),
                    (
                        "ports",
                        Value::list([Value::int(80), Value::Null, Value::Unknown]),
                    ),
                    (
                        "meta",
                        Value::map([("a", Value::Null), ("b", Value::string("c"))]),
                    ),
                ]),
                Value::Null,
                Value::Unknown,
                Value::object([
                    ("name", Value::Null),
                    ("ports", Value::Null),
                    ("meta", Value::Unknown),
                ]),
            ]),
        ),
        ("opt", Value::Null),
    ]);
    assert_eq!(rt_msgpack(&v, &ty), v);
}

#[test]
fn every_primitive_type_round_trips_through_both_codecs() {
    let cases = [
        (Type::Bool, Value::Bool(true)),
        (Type::Number, Value::int(i64::MIN)),
        (Type::Number, Value::int(i64::MAX)),
        (Type::Number, Value::float(-2.75).unwrap()),
        (Type::Number, Value::float(1e300).unwrap()),
        (
            Type::Number,
            Value::Number(Number::Big("-0.1000000000000000000000000001".into())),
        ),
        (Type::String, Value::string("üñî \"quoted\" \n\u{0}")),
        (Type::String, Value::string("")),
        (
            Type::Dynamic,
            Value::Dynamic(
                Type::list(Type::Number),
                Box::new(Value::list([Value::int(1)])),
            ),
        ),
        (
            Type::Dynamic,
            Value::Dynamic(Type::String, Box::new(Value::Null)),
        ),
    ];
    for (ty, v) in cases {
        assert_eq!(rt_msgpack(&v, &ty), v, "msgpack {ty}");
        assert_eq!(rt_json(&v, &ty), v, "json {ty}");
        assert_eq!(rt_msgpack(&Value::Null, &ty), Value::Null);
        assert_eq!(rt_msgpack(&Value::Unknown, &ty), Value::Unknown);
        assert_eq!(rt_json(&Value::Null, &ty), Value::Null);
    }
}

// ---- JSON (state) ----------------------------------------------------------------------------------

#[test]
fn stored_state_json_decodes_and_re_encodes_sorted_and_exact() {
    let ty = obj_ty(&[
        ("host", Type::String),
        ("port", Type::Number),
        ("files", Type::map(Type::String)),
        ("jump_host", obj_ty(&[("host", Type::String)])),
        ("extra", Type::Dynamic),
        ("ratio", Type::Number),
    ]);
    let state = br#"{"port":22,"host":"47.1.2.3","files":{"b":"2","a":"1"},"jump_host":null,
        "extra":{"value":["x"],"type":["list","string"]},"ratio":0.1}"#;
    let v = decode_json(state, &ty).unwrap();
    assert_eq!(v.get_attr("port").and_then(Value::as_i64), Some(22));
    assert_eq!(
        v.get_attr("extra")
            .and_then(Value::as_elements)
            .map(<[Value]>::len),
        Some(1)
    );
    // 0.1 is kept as its decimal text: no float64 rounding creeps into state.
    assert!(matches!(v.get_attr("ratio"), Some(Value::Number(Number::Big(s))) if s == "0.1"));
    assert_eq!(
        encode_json(&v, &ty).unwrap(),
        br#"{"extra":{"value":["x"],"type":["list","string"]},"files":{"a":"1","b":"2"},"host":"47.1.2.3","jump_host":null,"port":22,"ratio":0.1}"#
    );
    // The decimal text survives into msgpack as a string, exactly as cty writes non-float64 numbers.
    let mp = encode_msgpack(v.get_attr("ratio").unwrap(), &Type::Number).unwrap();
    assert_eq!(mp, [0xa3, b'0', b'.', b'1']);
}

#[test]
fn json_converts_primitives_like_cty() {
    let ty = obj_ty(&[
        ("n", Type::Number),
        ("s", Type::String),
        ("b", Type::Bool),
        ("s2", Type::String),
    ]);
    let v = decode_json(br#"{"n":"12","s":5,"b":"true","s2":false}"#, &ty).unwrap();
    assert_eq!(
        v,
        Value::object([
            ("n", Value::int(12)),
            ("s", Value::string("5")),
            ("b", Value::Bool(true)),
            ("s2", Value::string("false"))
        ])
    );
}

#[test]
fn unknown_values_cannot_go_into_state_json() {
    let ty = obj_ty(&[("a", Type::list(Type::String))]);
    let v = Value::object([("a", Value::list([Value::string("x"), Value::Unknown]))]);
    let err = encode_json(&v, &ty).unwrap_err();
    assert!(matches!(err, CodecError::UnknownInJson { .. }));
    assert_eq!(
        err.to_string(),
        "at .a[1]: unknown values cannot be encoded as JSON"
    );
}

// ---- errors ------------------------------------------------------------------------------------------

#[test]
fn mismatch_error_names_the_path_and_never_the_value() {
    let ty = obj_ty(&[("admin", obj_ty(&[("password", Type::Number)]))]);
    let encode_loose = |v: Value, t: Type| {
        let loose = obj_ty(&[("admin", obj_ty(&[("password", t)]))]);
        encode_msgpack(
            &Value::object([("admin", Value::object([("password", v)]))]),
            &loose,
        )
        .unwrap()
    };
    let err = decode_msgpack(&encode_loose(Value::Bool(true), Type::Bool), &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at .admin.password: expected number, found bool"
    );
    let steps = err.path().unwrap().steps();
    assert_eq!(
        steps,
        [
            PathStep::Attr("admin".into()),
            PathStep::Attr("password".into())
        ]
    );
    // Strings are accepted where numbers are expected (cty does the same) but a non-number string is
    // refused without echoing it.
    let err = decode_msgpack(
        &encode_loose(Value::string("hunter2hunter2"), Type::String),
        &ty,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "at .admin.password: invalid number");
    assert!(!format!("{err:?}").contains("hunter2"));
    // A string where a list is expected: kind only.
    let lt = obj_ty(&[("admin", obj_ty(&[("password", Type::list(Type::String))]))]);
    let err = decode_msgpack(
        &encode_loose(Value::string("hunter2hunter2"), Type::String),
        &lt,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "at .admin.password: expected list of string, found string"
    );

    let err = decode_json(br#"{"admin":{"password":"hunter2hunter2"}}"#, &ty).unwrap_err();
    assert!(matches!(err, CodecError::InvalidNumber { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[test]
fn undeclared_attribute_is_refused_with_its_name() {
    let ty = obj_ty(&[("a", Type::String)]);
    let err = decode_msgpack(&[0x81, 0xa1, b'z', 0xc0], &ty).unwrap_err();
    assert_eq!(err.to_string(), "at (root): unsupported attribute \"z\"");
    let err = decode_json(br#"{"a":"x","z":1}"#, &ty).unwrap_err();
    assert!(matches!(err, CodecError::UnsupportedAttribute { ref name, .. } if name == "z"));
    let err = encode_msgpack(&Value::object([("z", Value::Null)]), &ty).unwrap_err();
    assert!(matches!(err, CodecError::UnsupportedAttribute { .. }));
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let ty = obj_ty(&[("a", Type::list(Type::String))]);
    for bad in [
        &[][..],
        &[0x81],
        &[0x81, 0xa1, b'a', 0x92, 0xa1],
        &[0x81, 0x01, 0xc0],
        &[0xc0, 0xc0],
    ] {
        assert!(decode_msgpack(bad, &ty).is_err(), "{bad:?}");
    }
    assert!(matches!(
        decode_msgpack(&[0xc0, 0xc0], &ty),
        Err(CodecError::TrailingBytes(1))
    ));
    for bad in [&b""[..], b"{", b"[1]", br#"{"a":"x"}"#, br#"{"a":[1"#] {
        assert!(
            decode_json(bad, &ty).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // Tuples must match their length.
    let tt = Type::Tuple(vec![Type::Bool]);
    assert!(matches!(
        decode_msgpack(&[0x92, 0xc3, 0xc3], &tt),
        Err(CodecError::TupleLength {
            expected: 1,
            found: 2,
            ..
        })
    ));
    // Deep nesting is bounded.
    let deep: Vec<u8> = std::iter::repeat_n(0x91u8, 100_000).chain([0xc0]).collect();
    assert!(decode_msgpack(&deep, &Type::Dynamic).is_err());
    let nested = |n: usize| (0..n).fold(Type::Bool, |t, _| Type::list(t));
    let deep_json = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(decode_json(deep_json(100).as_bytes(), &nested(100)).is_ok());
    assert!(decode_json(deep_json(300).as_bytes(), &nested(300)).is_err());
    assert!(decode_json(deep_json(5000).as_bytes(), &nested(5000)).is_err());
    // Dynamic wrappers with a bad type are refused.
    assert!(decode_msgpack(&[0x92, 0xc4, 0x01, b'x', 0xc0], &Type::Dynamic).is_err());
    // A heterogenous bare list at a dynamic position has no type.
    let mixed = Value::list([Value::int(1), Value::string("a")]);
    assert!(matches!(
        encode_msgpack(&mixed, &Type::Dynamic),
        Err(CodecError::UntypedDynamic { .. })
    ));
}

// ---- types -------------------------------------------------------------------------------------------

#[test]
fn type_json_matches_cty_and_round_trips() {
    let ty = obj_ty(&[
        ("b", Type::list(Type::Number)),
        ("a", Type::String),
        ("c", Type::Tuple(vec![Type::Bool, Type::Dynamic])),
        ("d", Type::map(Type::set(Type::String))),
    ]);
    let json = br#"["object",{"a":"string","b":["list","number"],"c":["tuple",["bool","dynamic"]],"d":["map",["set","string"]]}]"#;
    assert_eq!(ty.to_json(), json);
    assert_eq!(Type::from_json(json).unwrap(), ty);
    // Optional-attribute lists in type constraints are accepted.
    assert_eq!(
        Type::from_json(br#"["object",{"a":"string"},["a"]]"#).unwrap(),
        obj_ty(&[("a", Type::String)])
    );
    for bad in [
        &br#""str""#[..],
        br#"["list"]"#,
        br#"["frob","string"]"#,
        b"1",
        br#"["object",[]]"#,
    ] {
        assert!(
            Type::from_json(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(Type::list(Type::String).to_string(), "list of string");
}

#[test]
fn accessors_see_through_dynamic_and_report_absence() {
    let mut v = Value::object([
        ("a", Value::string("x")),
        ("n", Value::int(3)),
        ("b", Value::Bool(true)),
    ]);
    assert_eq!(v.get_attr("a").and_then(Value::as_str), Some("x"));
    assert_eq!(v.get_attr("n").and_then(Value::as_i64), Some(3));
    assert_eq!(v.get_attr("b").and_then(Value::as_bool), Some(true));
    assert_eq!(v.get_attr("zz"), None);
    assert!(v.set_attr("a", Value::Null));
    assert!(v.get_attr("a").unwrap().is_null());
    let d = Value::Dynamic(Type::Bool, Box::new(Value::Bool(false)));
    assert_eq!(d.as_bool(), Some(false));
    assert!(!Value::Dynamic(Type::Bool, Box::new(Value::Unknown)).is_known());
    assert_eq!(Value::string("x").get_attr("a"), None);
    let inferred = Value::object([
        ("l", Value::list([Value::Null, Value::int(1)])),
        ("e", Value::list([])),
    ])
    .infer_type();
    assert_eq!(
        inferred,
        Some(obj_ty(&[
            ("e", Type::list(Type::Dynamic)),
            ("l", Type::list(Type::Number))
        ]))
    );
}

// ---- property test -------------------------------------------------------------------------------------

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::Bool),
        Just(Type::Number),
        Just(Type::String),
        Just(Type::Dynamic)
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", inner.clone(), 0..4)
                .prop_map(Type::Object),
            prop::collection::vec(inner, 0..3).prop_map(Type::Tuple),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::Int),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        "-?[1-9][0-9]{19,40}".prop_map(Number::Big),
        "-?[0-9]\\.[0-9]{18,30}[1-9]".prop_map(Number::Big),
    ]
}

/// A value of type `ty`; `unknowns` allows unknown values (msgpack only); `depth` bounds dynamic nesting.
fn arb_value(ty: Type, unknowns: bool, depth: u32) -> BoxedStrategy<Value> {
    let known = arb_known(ty, unknowns, depth);
    if unknowns {
        prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
    } else {
        prop_oneof![1 => Just(Value::Null), 6 => known].boxed()
    }
}

fn arb_known(ty: Type, unknowns: bool, depth: u32) -> BoxedStrategy<Value> {
    match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::String => any::<String>().prop_map(Value::String).boxed(),
        Type::List(e) => prop::collection::vec(arb_value(*e, unknowns, depth), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(e) => prop::collection::vec(arb_value(*e, unknowns, depth), 0..4)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(e) => prop::collection::btree_map(".{0,8}", arb_value(*e, unknowns, depth), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Object(attrs) => {
            let names: Vec<String> = attrs.keys().cloned().collect();
            let values: Vec<_> = attrs
                .into_values()
                .map(|t| arb_value(t, unknowns, depth))
                .collect();
            values
                .prop_map(move |vals| {
                    Value::Object(names.iter().cloned().zip(vals).collect::<BTreeMap<_, _>>())
                })
                .boxed()
        }
        Type::Tuple(elems) => {
            let values: Vec<_> = elems
                .into_iter()
                .map(|t| arb_value(t, unknowns, depth))
                .collect();
            values.prop_map(Value::Tuple).boxed()
        }
        Type::Dynamic if depth == 0 => any::<String>()
            .prop_map(|s| Value::Dynamic(Type::String, Box::new(Value::String(s))))
            .boxed(),
        Type::Dynamic => arb_type()
            .prop_filter("concrete", |t| *t != Type::Dynamic)
            .prop_flat_map(move |t| {
                arb_value(t.clone(), unknowns, depth - 1)
                    .prop_map(move |v| Value::Dynamic(t.clone(), Box::new(v)))
            })
            .boxed(),
    }
}

fn arb_pair(unknowns: bool) -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(move |t| (Just(t.clone()), arb_value(t, unknowns, 2)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_values_round_trip_through_msgpack((ty, v) in arb_pair(true)) {
        let bytes = encode_msgpack(&v, &ty).unwrap();
        prop_assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), v);
    }

    #[test]
    fn random_known_values_round_trip_through_json((ty, v) in arb_pair(false)) {
        let bytes = encode_json(&v, &ty).unwrap();
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
        prop_assert_eq!(decode_json(&bytes, &ty).unwrap(), v);
    }

    #[test]
    fn random_types_round_trip_through_type_json(ty in arb_type()) {
        prop_assert_eq!(Type::from_json(&ty.to_json()).unwrap(), ty);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..64), ty in arb_type()) {
        let _ = decode_msgpack(&bytes, &ty);
        let _ = decode_json(&bytes, &ty);
    }
}
