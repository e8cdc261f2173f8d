//! What a run sets up before its session: the checkpoint to resume, the data and the network.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Var};
use candle_nn::{VarBuilder, VarMap};

use super::checkpoint::{self, Checkpoint};
use super::data::{Dataset, Sampler};
use super::report::Reporter;
use super::{TrainOptions, single_stream};
use crate::model::Network;
use crate::{Error, Result};

/// The checkpoint to continue from: the newest in `opts.out` with `opts.resume` (none there
/// starts a new run), and refusal to start over a run without it. Checked before the data load
/// so that a wrong folder fails at once.
pub(super) fn checkpoint_to_resume(
    opts: &TrainOptions,
    rep: &Reporter,
) -> Result<Option<(Checkpoint, PathBuf)>> {
    if !opts.resume {
        if let Some((step, path)) = checkpoint::latest(&opts.out)? {
            return Err(Error::InvalidInput(format!(
                "{} already holds a run (step {step}: {}); pass --resume to continue it or \
                 choose another output folder",
                opts.out.display(),
                path.display()
            )));
        }
        return Ok(None);
    }
    let Some((_, path)) = checkpoint::latest(&opts.out)? else {
        rep.say(&format!(
            "no checkpoint in {}: starting a new run",
            opts.out.display()
        ));
        return Ok(None);
    };
    let ck = checkpoint::load(&path)?;
    let s = &ck.state;
    if s.config != opts.config || s.patch != opts.patch || s.batch != opts.batch {
        return Err(Error::InvalidInput(format!(
            "{} is a run of {} with patch {} and batch {}; asked for {} with patch {} and \
             batch {}",
            path.display(),
            s.config,
            s.patch,
            s.batch,
            opts.config,
            opts.patch,
            opts.batch
        )));
    }
    Ok(Some((ck, path)))
}

/// What a session sets up the same way whether its run is fresh or resumed: the data and the
/// network, its parameters not yet set.
pub(super) struct Setup {
    pub(super) rep: Reporter,
    pub(super) sampler: Sampler,
    pub(super) data: Dataset,
    pub(super) net: Network,
    /// The network's variables, sorted by name.
    pub(super) vars: Vec<(String, Var)>,
}

impl Setup {
    pub(super) fn new(opts: &TrainOptions, rep: Reporter) -> Result<Self> {
        let sampler = Sampler::new(&opts.config, opts.patch)?.with_min_detail(opts.min_detail);
        let t_load = Instant::now();
        let data = Dataset::load(&opts.data, sampler.hr_side())?;
        rep.say(&format!(
            "data: {} images from {} ({:.0} MB decoded, {} smaller than {}×{} left out) in \
             {:.1} s",
            data.len(),
            data.dir.display(),
            data.bytes() as f64 / 1e6,
            data.skipped,
            sampler.hr_side(),
            sampler.hr_side(),
            t_load.elapsed().as_secs_f64()
        ));
        let device = &opts.device;
        single_stream(device);
        let varmap = VarMap::new();
        let net = Network::new(
            &opts.config,
            VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        // the variables outlive the map: each is a handle on the tensor the network reads
        let mut vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| Error::Model("variable map lock poisoned".into()))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            rep,
            sampler,
            data,
            net,
            vars,
        })
    }
}
