//! Shared by the datasets tests.
use medtrans_datasets::SubjectSpec;
use std::path::Path;

/// The ICBM152 T1 -> T2 pair with its brain mask, from `../shared/data`.
pub fn icbm(data: &Path) -> SubjectSpec {
    let d = data.join("icbm152-2009c");
    SubjectSpec {
        a: d.join("mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"),
        b: d.join("mni_icbm152_t2_tal_nlin_sym_09c.nii.gz"),
        mask: Some(d.join("mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz")),
        ..Default::default()
    }
}
