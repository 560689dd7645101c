//! Error builders for lowering: each names the node at fault.

use crate::error::GraphError;
use crate::graph::{Node, WeightRef};
use kestrel_kernels::ParamError;

/// Error builders that name the node.
pub(super) struct Ctx<'a> {
    pub(super) node: &'a Node,
}

impl Ctx<'_> {
    pub(super) fn invalid(&self, e: ParamError) -> GraphError {
        GraphError::Invalid {
            node: self.node.name.clone(),
            op: self.node.op.name(),
            detail: e.0,
        }
    }

    pub(super) fn shape(&self, detail: String) -> GraphError {
        GraphError::Invalid {
            node: self.node.name.clone(),
            op: self.node.op.name(),
            detail,
        }
    }

    pub(super) fn rank4(&self, x: &[usize]) -> Result<[usize; 4], GraphError> {
        <[usize; 4]>::try_from(x).map_err(|_| {
            self.shape(format!(
                "expected an NCHW input (n, c, h, w), got shape {x:?}"
            ))
        })
    }

    /// Resolves a PyTorch-style dimension index (negative counts from the end).
    pub(super) fn axis(&self, attr: &str, dim: i64, rank: usize) -> Result<usize, GraphError> {
        let r = rank as i64;
        let d = if dim < 0 { dim + r } else { dim };
        if (0..r).contains(&d) {
            Ok(d as usize)
        } else {
            Err(GraphError::Attr {
                node: self.node.name.clone(),
                attr: attr.to_string(),
                detail: format!("dimension {dim} is out of range for a rank-{rank} input"),
            })
        }
    }

    pub(super) fn weight_shape(&self, role: &str, w: &WeightRef, expected: &str) -> GraphError {
        GraphError::Invalid {
            node: self.node.name.clone(),
            op: self.node.op.name(),
            detail: format!(
                "weight \"{role}\" (tensor \"{}\") has shape {:?}, expected {expected}",
                w.name, w.shape
            ),
        }
    }

    pub(super) fn check_weight(
        &self,
        role: &str,
        w: &WeightRef,
        expected: &[usize],
    ) -> Result<(), GraphError> {
        if w.shape == expected {
            return Ok(());
        }
        Err(GraphError::WeightShape {
            node: self.node.name.clone(),
            role: role.to_string(),
            tensor: w.name.clone(),
            expected: expected.to_vec(),
            found: w.shape.clone(),
        })
    }

    pub(super) fn check_bias(
        &self,
        bias: Option<&WeightRef>,
        c_out: usize,
    ) -> Result<(), GraphError> {
        match bias {
            Some(b) => self.check_weight("bias", b, &[c_out]),
            None => Ok(()),
        }
    }
}
