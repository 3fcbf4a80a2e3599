//! Experiments: grids of training runs that reproduce a paper's table.
//!
//! Every experiment has one shape ([`Experiment`]): a config of shared keys
//! plus its own, a grid of runs, the scoring of a run, and a report. Each
//! run has its own folder and is resumable, so an experiment that takes
//! longer than one sitting is simply started again: finished runs are
//! skipped, unfinished ones continue from their last checkpoint.
pub mod augment;
pub mod experiment;
pub mod grid;
pub mod many_to_one;
pub mod noise_sweep;
pub mod plot;
pub mod runner;
pub mod shape;
pub mod slabs;
pub mod subjects;
pub mod table1;

pub use augment::{report_augment, AugmentConfig};
pub use experiment::{read_config, Common, Experiment};
pub use many_to_one::{report_many_to_one, ManyToOneConfig};
pub use noise_sweep::{
    check_claims, check_unpaired_claims, registration_check, report_noise_sweep, RegistrationRow,
    SweepConfig, SweepRow,
};
pub use shape::{report_shape, ShapeConfig};
pub use subjects::{SubjectsConfig, SubjectsResults};
pub use table1::{Table1Config, Table1Results};
