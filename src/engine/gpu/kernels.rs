//! The kernel table: every entry point, the shader it lives in, its storage bindings; and the
//! per-device cache of compiled pipelines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::scope::checked;
use crate::engine::KNN_MAX_K;
use crate::engine::{Activation, Likelihood, Optimizer};
use crate::error::Result;

/// Invocations per workgroup of the one-dimensional kernels, injected into every shader as `WG`.
pub(crate) const WG: u32 = 256;

/// A shader file (with the library files it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Shader {
    Matmul,
    /// The same product with 32 x 32 tiles, for the small shapes of a VAE's layers.
    MatmulSmall,
    Elementwise,
    Random,
    Loss,
    Optim,
    Knn,
}

impl Shader {
    fn source(self) -> String {
        let parts: &[&str] = match self {
            Shader::Matmul | Shader::MatmulSmall => {
                &[ACTIVATION, include_str!("../../../shaders/matmul.wgsl")]
            }
            Shader::Elementwise => &[
                ACTIVATION,
                include_str!("../../../shaders/elementwise.wgsl"),
            ],
            Shader::Random => &[PHILOX, include_str!("../../../shaders/random.wgsl")],
            Shader::Loss => &[ACTIVATION, include_str!("../../../shaders/loss.wgsl")],
            Shader::Optim => &[include_str!("../../../shaders/optim.wgsl")],
            Shader::Knn => &[include_str!("../../../shaders/knn.wgsl")],
        };
        let mut src = header();
        // Outputs per invocation per side: 4 (tiles of 64 x 64) or 2 (32 x 32).
        let per = if self == Shader::MatmulSmall { 2 } else { 4 };
        src += &format!("const PER: u32 = {per}u;\n");
        for p in parts {
            src.push_str(p);
            src.push('\n');
        }
        src
    }
}

const ACTIVATION: &str = include_str!("../../../shaders/activation.wgsl");
const PHILOX: &str = include_str!("../../../shaders/philox.wgsl");

/// A WGSL `f32` literal that parses back to exactly `v`.
fn float(v: f32) -> String {
    format!("{v:?}f")
}

/// The constants shared by host and shaders, written from their Rust definitions.
fn header() -> String {
    let mut h = format!(
        "const WG: u32 = {WG}u;\nconst KNN_MAX_K: u32 = {KNN_MAX_K}u;\nconst PARTIALS: u32 = {}u;\nconst MODEL_WORDS: u32 = {}u;\n",
        super::PARTIALS,
        crate::engine::ModelStep::WORDS
    );
    for (name, act) in [
        ("RELU", Activation::Relu),
        ("ELU", Activation::Elu),
        ("TANH", Activation::Tanh),
        ("SIGMOID", Activation::Sigmoid),
        ("IDENTITY", Activation::Identity),
    ] {
        h += &format!("const ACT_{name}: u32 = {}u;\n", act as u32);
    }
    h += &format!(
        "const LIKELIHOOD_BERNOULLI: u32 = {}u;\n",
        Likelihood::Bernoulli as u32
    );
    for (name, v) in [
        ("MIN_LOGVAR", Likelihood::MIN_LOGVAR),
        ("MAX_LOGVAR", Likelihood::MAX_LOGVAR),
    ] {
        h += &format!("const {name}: f32 = {};\n", float(v));
    }
    for (name, v) in [
        ("MOMENTUM", Optimizer::MOMENTUM),
        ("RMSPROP_RHO", Optimizer::RMSPROP_RHO),
        ("EPS", Optimizer::EPS),
        ("ADAM_BETA1", Optimizer::ADAM_BETA1),
        ("ADAM_BETA2", Optimizer::ADAM_BETA2),
        ("ADAM_EPS", Optimizer::ADAM_EPS),
    ] {
        h += &format!("const OPT_{name}: f32 = {};\n", float(v));
    }
    h
}

/// May a kernel write a storage binding?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

use Access::{Read, ReadWrite};

/// Every compute entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Matmul,
    MatmulSmall,
    Fill,
    Copy,
    GatherRows,
    ActivationBiasGrad,
    BiasGrad,
    PhiloxWords,
    Dropout,
    Normal,
    Reparameterize,
    Reconstruction,
    GaussianLearned,
    SoftmaxCrossEntropy,
    Kl,
    L2,
    SumSquares,
    FinishSum,
    SgdStep,
    MomentumStep,
    AdagradStep,
    RmspropStep,
    AdamStep,
    KnnMerge,
}

impl Kernel {
    /// Shader, entry point, and the storage bindings `(binding, access)` in the order launchers
    /// pass their buffers. Binding 0 is always the kernel's uniform parameters.
    fn spec(self) -> (Shader, &'static str, &'static [(u32, Access)]) {
        use Kernel as K;
        use Shader as S;
        match self {
            K::Matmul => (
                S::Matmul,
                "matmul",
                &[(1, Read), (2, Read), (3, Read), (4, ReadWrite)],
            ),
            K::MatmulSmall => (
                S::MatmulSmall,
                "matmul",
                &[(1, Read), (2, Read), (3, Read), (4, ReadWrite)],
            ),
            K::Fill => (S::Elementwise, "fill", &[(2, ReadWrite)]),
            K::Copy => (S::Elementwise, "copy", &[(1, Read), (2, ReadWrite)]),
            K::GatherRows => (
                S::Elementwise,
                "gather_rows",
                &[(1, Read), (3, Read), (2, ReadWrite)],
            ),
            K::ActivationBiasGrad => (
                S::Elementwise,
                "activation_bias_grad",
                &[(1, Read), (2, ReadWrite), (4, ReadWrite)],
            ),
            K::BiasGrad => (S::Elementwise, "bias_grad", &[(1, Read), (2, ReadWrite)]),
            K::PhiloxWords => (S::Random, "philox_words", &[(4, ReadWrite)]),
            K::Dropout => (S::Random, "dropout", &[(2, ReadWrite), (5, Read)]),
            K::Normal => (S::Random, "normal", &[(2, ReadWrite)]),
            K::Reparameterize => (
                S::Random,
                "reparameterize",
                &[(1, Read), (2, ReadWrite), (3, ReadWrite), (5, Read)],
            ),
            K::Reconstruction => (
                S::Loss,
                "reconstruction",
                &[
                    (1, Read),
                    (2, Read),
                    (3, ReadWrite),
                    (10, Read),
                    (4, ReadWrite),
                ],
            ),
            K::GaussianLearned => (
                S::Loss,
                "gaussian_learned",
                &[
                    (1, Read),
                    (2, Read),
                    (7, Read),
                    (3, ReadWrite),
                    (8, ReadWrite),
                    (10, Read),
                    (4, ReadWrite),
                ],
            ),
            K::SoftmaxCrossEntropy => (
                S::Loss,
                "softmax_cross_entropy",
                &[
                    (1, Read),
                    (2, Read),
                    (9, Read),
                    (3, ReadWrite),
                    (10, Read),
                    (4, ReadWrite),
                ],
            ),
            K::Kl => (
                S::Loss,
                "kl",
                &[
                    (1, Read),
                    (2, Read),
                    (5, Read),
                    (3, ReadWrite),
                    (10, Read),
                    (4, ReadWrite),
                ],
            ),
            K::L2 => (S::Loss, "l2", &[(1, Read), (3, ReadWrite), (4, ReadWrite)]),
            K::SumSquares => (S::Loss, "sum_squares", &[(1, Read), (4, ReadWrite)]),
            K::FinishSum => (S::Loss, "finish_sum", &[(4, ReadWrite), (6, ReadWrite)]),
            K::SgdStep => (
                S::Optim,
                "sgd_step",
                &[(1, ReadWrite), (2, Read), (5, Read)],
            ),
            K::MomentumStep => (
                S::Optim,
                "momentum_step",
                &[(1, ReadWrite), (2, Read), (3, ReadWrite), (5, Read)],
            ),
            K::AdagradStep => (
                S::Optim,
                "adagrad_step",
                &[(1, ReadWrite), (2, Read), (3, ReadWrite), (5, Read)],
            ),
            K::RmspropStep => (
                S::Optim,
                "rmsprop_step",
                &[(1, ReadWrite), (2, Read), (3, ReadWrite), (5, Read)],
            ),
            K::KnnMerge => (
                S::Knn,
                "knn_merge",
                &[(1, Read), (2, Read), (3, ReadWrite), (4, ReadWrite)],
            ),
            K::AdamStep => (
                S::Optim,
                "adam_step",
                &[
                    (1, ReadWrite),
                    (2, Read),
                    (3, ReadWrite),
                    (4, ReadWrite),
                    (5, Read),
                ],
            ),
        }
    }

    /// The storage bindings, in launcher order.
    pub fn bindings(self) -> &'static [(u32, Access)] {
        self.spec().2
    }

    pub fn name(self) -> &'static str {
        self.spec().1
    }
}

/// A compiled kernel.
pub(crate) struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Pipelines of one device, compiled on first use and shared by its engines.
#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(Kernel, u64), Arc<Pipeline>>>,
}

impl PipelineCache {
    /// The pipeline of `kernel` whose uniform parameters are `params_size` bytes.
    pub fn get(
        &self,
        device: &wgpu::Device,
        kernel: Kernel,
        params_size: u64,
    ) -> Result<Arc<Pipeline>> {
        let key = (kernel, params_size);
        if let Some(p) = self.pipelines.lock().expect("cache lock").get(&key) {
            return Ok(p.clone());
        }
        let (shader, entry, bindings) = kernel.spec();
        let module = {
            let mut modules = self.modules.lock().expect("cache lock");
            match modules.get(&shader) {
                Some(m) => m.clone(),
                None => {
                    let m = checked(device, &format!("compiling {shader:?} shaders"), || {
                        device.create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(&format!("{shader:?}")),
                            source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                        })
                    })?;
                    modules.insert(shader, m.clone());
                    m
                }
            }
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: std::num::NonZeroU64::new(params_size),
            },
            count: None,
        }];
        entries.extend(
            bindings
                .iter()
                .map(|&(binding, access)| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: access == Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }),
        );
        let pipeline = checked(device, &format!("building kernel {entry}"), || {
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(entry),
                entries: &entries,
            });
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(entry),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            Pipeline { pipeline, layout }
        })?;
        let p = Arc::new(pipeline);
        self.pipelines
            .lock()
            .expect("cache lock")
            .insert(key, p.clone());
        Ok(p)
    }
}
