//! Program-choice models (docs/modelling.md §4.4-4.5): one file per family of scores, the
//! parameters they share, and the softmax likelihood over choice sets ([`likelihood`]).
//!
//! A model is a set of free [`Param`]s. Parameters a model lacks take a neutral value (β = 0,
//! discount = 0), so one scoring routine serves every model and nesting is a subset relation.

pub mod gi;
pub mod library;
pub mod likelihood;
pub mod mdl;
pub mod null;
pub mod step;

use serde::Serialize;

use crate::error::AnalysisError;
use crate::key::StatKey;

/// The p_end values the likelihood is averaged over (docs/modelling.md §4.5).
pub const P_END_GRID: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Number of distinct parameters across all models.
pub const N_PARAMS: usize = 8;

/// Lower bound of positive parameters and of probabilities (docs/modelling.md §4.6).
pub const LOWER_BOUND: f64 = 1e-4;

/// A free parameter of some model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Param {
    /// Inverse temperature on program length T.
    BetaMdl,
    /// Inverse temperature on step cost S.
    BetaStep,
    /// Concentration b of the grammar-induction restaurant.
    Alpha,
    /// Inverse temperature on log P_GI.
    BetaGi,
    /// Probability that a token is a call (1 - p_normal).
    PCall,
    /// Pitman-Yor discount a.
    Discount,
    /// Weight w_o of the participant's own earlier leaf bodies (the library model).
    LibOwn,
    /// Weight w_p of the population's leaf bodies (the library model).
    LibPop,
}

/// How a parameter is bounded, which decides its reparameterisation for the optimiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// In [1e-4, ∞); optimised as ln(x - 1e-4).
    Positive,
    /// In [lower, upper]; optimised on the logit scale of the position within the bounds.
    Bounded { lower: f64, upper: f64 },
}

/// A probability-like weight whose value 0, a nested model, lies inside the bounds: the
/// discount and the library weights.
pub const FROM_ZERO: ParamKind = ParamKind::Bounded {
    lower: 0.0,
    upper: 1.0 - LOWER_BOUND,
};

/// The unconstrained coordinate is clamped to this range so that extreme optimiser steps stay
/// finite (e^40 ≈ 2e17 for a β; logit ±40 is within 1e-17 of a bound).
pub(crate) const U_LIMIT: f64 = 40.0;

impl Param {
    pub const ALL: [Param; N_PARAMS] = [
        Param::BetaMdl,
        Param::BetaStep,
        Param::Alpha,
        Param::BetaGi,
        Param::PCall,
        Param::Discount,
        Param::LibOwn,
        Param::LibPop,
    ];

    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Param::BetaMdl => "beta_mdl",
            Param::BetaStep => "beta_step",
            Param::Alpha => "alpha",
            Param::BetaGi => "beta_gi",
            Param::PCall => "p_call",
            Param::Discount => "discount",
            Param::LibOwn => "lib_own",
            Param::LibPop => "lib_pop",
        }
    }

    /// Position in a full parameter array.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn kind(self) -> ParamKind {
        match self {
            Param::BetaMdl | Param::BetaStep | Param::Alpha | Param::BetaGi => ParamKind::Positive,
            Param::PCall => ParamKind::Bounded {
                lower: LOWER_BOUND,
                upper: 1.0 - LOWER_BOUND,
            },
            // A discount of exactly 0 is the Dirichlet-process model nested inside, and library
            // weights of 0 are gi+step, so the bounds include 0.
            Param::Discount | Param::LibOwn | Param::LibPop => FROM_ZERO,
        }
    }

    /// (lower, upper) bounds.
    pub fn bounds(self) -> (f64, f64) {
        match self.kind() {
            ParamKind::Positive => (LOWER_BOUND, f64::INFINITY),
            ParamKind::Bounded { lower, upper } => (lower, upper),
        }
    }

    /// The default start of docs/modelling.md §4.6: β = 1, b = 1, p_normal = 0.5; the discount
    /// starts at (almost) 0, the Dirichlet process, and the library weights at (almost) 0,
    /// gi+step.
    pub fn default_start(self) -> f64 {
        match self {
            Param::PCall => 0.5,
            // Next to the nested model, so that the default start follows the nested model's
            // fit; the optimiser moves a weight inwards where the likelihood rises that way.
            Param::Discount | Param::LibOwn | Param::LibPop => LOWER_BOUND,
            _ => 1.0,
        }
    }

    /// The value a model without this parameter uses.
    pub fn neutral(self) -> f64 {
        match self {
            Param::BetaMdl
            | Param::BetaStep
            | Param::BetaGi
            | Param::Discount
            | Param::LibOwn
            | Param::LibPop => 0.0,
            Param::Alpha => 1.0,
            Param::PCall => 0.5,
        }
    }

    /// Clips `x` into the bounds.
    pub fn clip(self, x: f64) -> f64 {
        let (lower, upper) = self.bounds();
        x.clamp(lower, upper)
    }

    /// The unconstrained coordinate of value `x`.
    pub fn to_unbounded(self, x: f64) -> f64 {
        let u = match self.kind() {
            ParamKind::Positive => (x - LOWER_BOUND).ln(),
            ParamKind::Bounded { lower, upper } => {
                let q = (x - lower) / (upper - lower);
                q.ln() - (1.0 - q).ln()
            }
        };
        if u.is_nan() {
            0.0
        } else {
            u.clamp(-U_LIMIT, U_LIMIT)
        }
    }

    /// The value at unconstrained coordinate `u`.
    pub fn from_unbounded(self, u: f64) -> f64 {
        let u = u.clamp(-U_LIMIT, U_LIMIT);
        match self.kind() {
            ParamKind::Positive => LOWER_BOUND + u.exp(),
            ParamKind::Bounded { lower, upper } => lower + (upper - lower) * sigmoid(u),
        }
    }

    /// dx/du at unconstrained coordinate `u` (0 where the coordinate is clamped).
    pub fn derivative(self, u: f64) -> f64 {
        if !(-U_LIMIT..=U_LIMIT).contains(&u) {
            return 0.0;
        }
        match self.kind() {
            ParamKind::Positive => u.exp(),
            ParamKind::Bounded { lower, upper } => {
                let q = sigmoid(u);
                (upper - lower) * q * (1.0 - q)
            }
        }
    }
}

fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// A model: a name and its free parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Model {
    pub name: &'static str,
    pub params: &'static [Param],
}

/// Every model `proglab fit` knows, in report order.
pub const MODELS: [Model; 9] = [
    Model {
        name: "null",
        params: &[],
    },
    Model {
        name: "mdl",
        params: &[Param::BetaMdl],
    },
    Model {
        name: "step",
        params: &[Param::BetaStep],
    },
    Model {
        name: "mdl+step",
        params: &[Param::BetaMdl, Param::BetaStep],
    },
    Model {
        name: "gi",
        params: &[Param::Alpha, Param::BetaGi, Param::PCall],
    },
    Model {
        name: "gi+step",
        params: &[Param::BetaStep, Param::Alpha, Param::BetaGi, Param::PCall],
    },
    Model {
        name: "gi-py",
        params: &[Param::Alpha, Param::BetaGi, Param::PCall, Param::Discount],
    },
    Model {
        name: "gi-py+step",
        params: &[
            Param::BetaStep,
            Param::Alpha,
            Param::BetaGi,
            Param::PCall,
            Param::Discount,
        ],
    },
    Model {
        name: "lib+step",
        params: &[
            Param::BetaStep,
            Param::Alpha,
            Param::BetaGi,
            Param::PCall,
            Param::LibOwn,
            Param::LibPop,
        ],
    },
];

/// The six models of the reference paper (docs/modelling.md §4.5).
pub const REFERENCE_MODELS: [&str; 6] = ["null", "mdl", "step", "mdl+step", "gi", "gi+step"];

impl Model {
    /// The model of that name.
    pub fn by_name(name: &str) -> Result<Model, AnalysisError> {
        MODELS
            .iter()
            .copied()
            .find(|m| m.name == name.trim())
            .ok_or_else(|| {
                let known: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
                AnalysisError::UnknownModel {
                    name: name.trim().to_owned(),
                    known: known.join(", "),
                }
            })
    }

    /// Models from a comma-separated list, without duplicates, in the order given.
    pub fn parse_list(list: &str) -> Result<Vec<Model>, AnalysisError> {
        let mut models: Vec<Model> = Vec::new();
        for name in list.split(',').filter(|name| !name.trim().is_empty()) {
            let model = Model::by_name(name)?;
            if !models.contains(&model) {
                models.push(model);
            }
        }
        if models.is_empty() {
            return Err(AnalysisError::NoModels);
        }
        Ok(models)
    }

    /// The reference models.
    pub fn reference() -> Vec<Model> {
        REFERENCE_MODELS
            .iter()
            .filter_map(|name| Model::by_name(name).ok())
            .collect()
    }

    /// Number of free parameters (p_end is integrated out and not counted).
    pub fn k(&self) -> usize {
        self.params.len()
    }

    /// Whether the score involves the grammar-induction prior (and so depends on p_end).
    pub fn uses_gi(&self) -> bool {
        self.params.contains(&Param::BetaGi)
    }

    /// Whether the model is the library model, whose likelihood needs library features
    /// ([`library`]).
    pub fn uses_library(&self) -> bool {
        self.params.contains(&Param::LibOwn)
    }

    /// The model this one extends by library weights (`lib+step` extends `gi+step`): the same
    /// parameters without w_o and w_p. Its optimum seeds extra starts of this model's fit
    /// (docs/modelling.md §4.6).
    pub fn without_library(&self) -> Option<Model> {
        if !self.uses_library() {
            return None;
        }
        MODELS.iter().copied().find(|m| {
            m.nested_in(self)
                && !m.uses_library()
                && m.k() + library::LIBRARY_PARAMS.len() == self.k()
        })
    }

    /// Whether the restaurant's discount is free.
    pub fn uses_discount(&self) -> bool {
        self.params.contains(&Param::Discount)
    }

    /// Whether this model is `other` with some parameters fixed at their neutral values.
    /// (Fixing β_GI = 0 leaves alpha and p_call unidentified; the usual χ² reference
    /// distribution is then only approximate.)
    pub fn nested_in(&self, other: &Model) -> bool {
        self.name != other.name && self.params.iter().all(|p| other.params.contains(p))
    }

    /// The full parameter vector for this model's free values (in `self.params` order).
    pub fn theta(&self, values: &[f64]) -> Theta {
        let mut theta = Theta::neutral();
        for (param, &value) in self.params.iter().zip(values) {
            theta.values[param.index()] = value;
        }
        theta
    }

    /// The default start.
    pub fn default_start(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.default_start()).collect()
    }
}

/// Values for all parameters; those a model lacks are neutral.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Theta {
    pub values: [f64; N_PARAMS],
}

impl Theta {
    pub fn neutral() -> Theta {
        Theta {
            values: Param::ALL.map(Param::neutral),
        }
    }

    pub fn get(&self, param: Param) -> f64 {
        self.values[param.index()]
    }

    /// The score s_θ(p) of a program with statistics `key` at `p_end`, computed directly from the
    /// family scores (the likelihood uses an equivalent tabulated form).
    pub fn score(&self, key: &StatKey, p_end: f64) -> f64 {
        let mut score = null::score(key)
            + mdl::score(key, self.get(Param::BetaMdl))
            + step::score(key, self.get(Param::BetaStep));
        let beta_gi = self.get(Param::BetaGi);
        if beta_gi != 0.0 {
            let params = gi::GiParams {
                alpha: self.get(Param::Alpha),
                discount: self.get(Param::Discount),
                p_call: self.get(Param::PCall),
                p_end,
            };
            score += beta_gi * gi::log_prior(key, &params);
        }
        score
    }
}
