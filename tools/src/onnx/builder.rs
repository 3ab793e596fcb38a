//! A small ONNX graph builder over tract's protobuf types: just enough to write the BERT encoder
//! without pulling in a second protobuf stack.

use std::collections::HashMap;

use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The operator set every exported graph declares.
pub const OPSET: i64 = 17;
/// IR version 8 is what opset 17 shipped with; older onnxruntime builds reject newer IRs.
const IR_VERSION: i64 = 8;

/// A dimension of a graph input or output.
pub enum Dim {
    Fixed(i64),
    Named(&'static str),
}

/// An attribute value for [`Graph::op`].
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
}

/// A graph under construction; names are handed out by the builder so they never collide.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next_id: usize,
    // Repeated scalars (0.5, 1, zero points) would otherwise become hundreds of initializers.
    scalar_cache: HashMap<(i32, Vec<u8>, Vec<i64>), String>,
}

fn value_info(name: &str, elem: DataType, dims: Option<&[Dim]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| tensor_shape_proto::Dimension {
                denotation: String::new(),
                value: Some(match d {
                    Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n),
                    Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s.to_string()),
                }),
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape,
            })),
        }),
        doc_string: String::new(),
    }
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match value {
        Attr::Int(i) => {
            a.r#type = AttributeType::Int as i32;
            a.i = i;
        }
        Attr::Float(f) => {
            a.r#type = AttributeType::Float as i32;
            a.f = f;
        }
        Attr::Ints(v) => {
            a.r#type = AttributeType::Ints as i32;
            a.ints = v;
        }
    }
    a
}

impl Graph {
    fn fresh(&mut self, hint: &str) -> String {
        self.next_id += 1;
        format!("{hint}_{}", self.next_id)
    }

    /// Declares a graph input and returns its name.
    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, elem, Some(dims)));
        name.to_string()
    }

    /// Declares `value` (already produced by a node) as a graph output.
    pub fn output(&mut self, value: &str, elem: DataType, dims: Option<&[Dim]>) {
        self.outputs.push(value_info(value, elem, dims));
    }

    fn raw_init(&mut self, hint: &str, elem: DataType, dims: &[usize], raw: Vec<u8>) -> String {
        let name = self.fresh(hint);
        self.push_init(&name, elem, dims, raw);
        name
    }

    fn push_init(&mut self, name: &str, elem: DataType, dims: &[usize], raw: Vec<u8>) {
        self.inits.push(TensorProto {
            name: name.to_string(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: elem as i32,
            raw_data: raw,
            ..Default::default()
        });
    }

    /// Adds an fp32 initializer of shape `dims` (row-major data).
    pub fn init_f32(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let raw = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.raw_init(hint, DataType::Float, dims, raw)
    }

    /// Adds an fp32 initializer under exactly `name` (a Hugging Face tensor name, so readers can
    /// map it back); the caller keeps such names unique, and they never clash with the builder's
    /// own `hint_N` names because those contain no dots.
    pub fn init_f32_named(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        debug_assert!(
            !self.inits.iter().any(|t| t.name == name),
            "duplicate initializer {name}"
        );
        let raw = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push_init(name, DataType::Float, dims, raw);
        name.to_string()
    }

    /// Sets the doc string of initializer `name` (how it differs from the tensor it is named after).
    pub fn set_doc(&mut self, name: &str, doc: &str) {
        if let Some(t) = self.inits.iter_mut().rev().find(|t| t.name == name) {
            t.doc_string = doc.to_string();
        }
    }

    /// Adds an int64 initializer of shape `dims` (row-major data).
    pub fn init_i64(&mut self, hint: &str, dims: &[usize], data: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let raw = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.raw_init(hint, DataType::Int64, dims, raw)
    }

    /// Adds an int8 initializer of shape `dims` (row-major data).
    pub fn init_i8(&mut self, hint: &str, dims: &[usize], data: &[i8]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let raw = data.iter().map(|&x| x as u8).collect();
        self.raw_init(hint, DataType::Int8, dims, raw)
    }

    fn cached(&mut self, hint: &str, elem: DataType, dims: &[usize], raw: Vec<u8>) -> String {
        let key = (
            elem as i32,
            raw.clone(),
            dims.iter().map(|&d| d as i64).collect(),
        );
        if let Some(name) = self.scalar_cache.get(&key) {
            return name.clone();
        }
        let name = self.raw_init(hint, elem, dims, raw);
        self.scalar_cache.insert(key, name.clone());
        name
    }

    /// A shared fp32 scalar constant.
    pub fn scalar_f32(&mut self, x: f32) -> String {
        self.cached("c", DataType::Float, &[], x.to_le_bytes().to_vec())
    }

    /// A shared int8 scalar constant.
    pub fn scalar_i8(&mut self, x: i8) -> String {
        self.cached("c", DataType::Int8, &[], vec![x as u8])
    }

    /// A shared uint8 scalar constant.
    pub fn scalar_u8(&mut self, x: u8) -> String {
        self.cached("c", DataType::Uint8, &[], vec![x])
    }

    /// A shared int64 scalar constant.
    pub fn scalar_i64(&mut self, x: i64) -> String {
        self.cached("c", DataType::Int64, &[], x.to_le_bytes().to_vec())
    }

    /// A shared 1-D int64 constant (axes, shapes, slice bounds).
    pub fn ints(&mut self, v: &[i64]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.cached("c", DataType::Int64, &[v.len()], raw)
    }

    /// Appends a single-output node and returns its output name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(&op_type.to_lowercase());
        self.op_to(&out, op_type, inputs, attrs);
        out
    }

    /// Appends a single-output node writing to the given name (for graph outputs).
    pub fn op_to(&mut self, out: &str, op_type: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) {
        let name = self.fresh(op_type);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name,
            op_type: op_type.to_string(),
            domain: String::new(),
            attribute: attrs.into_iter().map(|(n, v)| attribute(n, v)).collect(),
            doc_string: String::new(),
        });
    }

    /// Wraps the graph in a model that declares opset [`OPSET`].
    pub fn finish(self, graph_name: &str) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "pith".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: graph_name.to_string(),
                initializer: self.inits,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
