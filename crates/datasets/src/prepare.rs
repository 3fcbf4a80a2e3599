//! `medtrans prepare`: volumes to a dataset folder of normalised N x N slices.

use crate::manifest::{
    AlignmentRecord, Manifest, RegistrationRecord, SkippedSubject, SliceLabelSummary, SliceRef,
    SplitMethod, SplitSpec, SubjectRecord, MANIFEST_FILE, SPLITS,
};
use crate::pipeline::{mask_inside, normalise, SlicePipeline};
use crate::slice_labels::{SliceLabelTable, SLICE_LABEL_FILES};
use crate::{DatasetError, Result};
use medtrans_io::{read_volume, write_npy, Geometry, ReadOptions, Slice, Volume};
use medtrans_registration::{background, register, Options as RegistrationOptions};
use medtrans_transforms::{
    check_affine, foreground_fraction, format_bounds, invert, regrid, resample, world_bounds,
    Interp3, Mat4, Normalization, SquareFit, IDENTITY,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One subject: a source-contrast volume A, a target-contrast volume B (on
/// any grid their affines place in one world), optionally a foreground mask
/// (in A's world), and optionally label maps of A
/// and B (integer classes, for the shape-consistency loss).
#[derive(Debug, Clone, Default)]
pub struct SubjectSpec {
    /// A name for reports (`subject000`, ... when not given).
    pub name: Option<String>,
    pub a: PathBuf,
    pub b: PathBuf,
    pub mask: Option<PathBuf>,
    pub labels_a: Option<PathBuf>,
    pub labels_b: Option<PathBuf>,
}

/// Everything `prepare` needs; [`PrepareSpec::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct PrepareSpec {
    pub subjects: Vec<SubjectSpec>,
    /// Slicing axis: 0 sagittal, 1 coronal, 2 axial.
    pub axis: usize,
    /// Keep only slice indices in `start..end`.
    pub slice_range: Option<(usize, usize)>,
    /// Drop slices whose foreground covers less than this fraction.
    pub min_foreground: f64,
    pub norm_a: Normalization,
    pub norm_b: Normalization,
    /// Output slices are `size` x `size`.
    pub size: usize,
    pub split: SplitSpec,
    /// A CSV of per-slice predictor labels (`volume,slice,label`).
    pub slice_labels: Option<PathBuf>,
    /// Whose grid A and B share when theirs differ.
    pub grid: GridChoice,
    /// Resample both onto that grid's field of view at this isotropic
    /// spacing (mm) instead of its own voxels.
    pub spacing: Option<f64>,
    /// Register B onto A first (rigid or affine, mutual information), for
    /// pairs whose headers do not already align them.
    pub align: Option<RegistrationOptions>,
    pub out: PathBuf,
}

/// The grid a subject's volumes are resampled onto when they differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GridChoice {
    /// A's voxels: the translator's input keeps its resolution.
    #[default]
    A,
    B,
}

impl PrepareSpec {
    pub fn new(subjects: Vec<SubjectSpec>, out: impl Into<PathBuf>) -> Self {
        PrepareSpec {
            subjects,
            axis: 2,
            slice_range: None,
            min_foreground: 0.05,
            norm_a: Normalization::default(),
            norm_b: Normalization::default(),
            size: 128,
            split: SplitSpec::default(),
            slice_labels: None,
            grid: GridChoice::A,
            spacing: None,
            align: None,
            out: out.into(),
        }
    }
}

/// A subject's volumes after checking, with its normalised slices.
struct Loaded {
    record: SubjectRecord,
    a: Vec<Slice>,
    b: Vec<Slice>,
    mask: Option<Vec<Slice>>,
    /// Label planes of A and B, where given.
    labels: [Option<Vec<Slice>>; 2],
    /// Slice indices kept after the range and foreground filters.
    kept: Vec<usize>,
}

fn read(path: &Path) -> Result<Volume> {
    read_volume(path, &ReadOptions::default()).map_err(DatasetError::Io)
}

/// Why two grids differ (affine entries more than 1e-3 mm apart, e.g. a
/// flipped axis), or `None` when they match.
fn grid_mismatch(a: &medtrans_io::Geometry, b: &medtrans_io::Geometry) -> Option<String> {
    if a.shape != b.shape {
        return Some(format!("{:?} vs {:?} voxels", a.shape, b.shape));
    }
    if a.orientation() != b.orientation() {
        return Some(format!("{} vs {}", a.orientation(), b.orientation()));
    }
    for i in 0..3 {
        for j in 0..4 {
            let d = (a.affine[i][j] - b.affine[i][j]).abs();
            if d > 1e-3 {
                return Some(format!("affine[{i}][{j}] differs by {d:.4}"));
            }
        }
    }
    None
}

/// Which volume's world the target grid lives in.
#[derive(Clone, Copy, PartialEq)]
enum Frame {
    A,
    B,
}

/// Put `v` on `target` (in `frame`'s world), given that `v` lives in
/// `own`'s world and `b_from_a` maps A's world to B's. Untouched when it is
/// already there; otherwise resampled, with the voxels inside its field of
/// view marked.
fn place(
    v: Volume,
    own: Frame,
    target: &Geometry,
    frame: Frame,
    b_from_a: &Mat4,
    interp: Interp3,
) -> Result<(Volume, Option<Vec<bool>>)> {
    let moving_from_fixed = match (frame, own) {
        (Frame::A, Frame::B) => *b_from_a,
        (Frame::B, Frame::A) => invert(b_from_a).ok_or_else(|| DatasetError::Volume {
            path: v.source.clone(),
            msg: "the registration found a degenerate (flat) transform; try --align rigid".into(),
        })?,
        _ => IDENTITY,
    };
    if moving_from_fixed == IDENTITY && grid_mismatch(&v.geometry, target).is_none() {
        return Ok((v, None));
    }
    let fill = match interp {
        Interp3::Nearest => 0.0,
        // Outside the field of view is background: the image's minimum
        // (air, in MR and CT alike).
        Interp3::Trilinear => background(&v),
    };
    let r = resample(&v, target, &moving_from_fixed, interp, fill).map_err(|e| {
        DatasetError::Volume {
            path: v.source.clone(),
            msg: e.to_string(),
        }
    })?;
    let out = Volume {
        data: r.data,
        geometry: target.clone(),
        ..v
    };
    Ok((out, Some(r.inside)))
}

fn load_subject(
    spec: &PrepareSpec,
    i: usize,
    s: &SubjectSpec,
    progress: &mut dyn FnMut(&str),
) -> Result<Loaded> {
    let a = read(&s.a)?;
    let b = read(&s.b)?;
    for v in [&a, &b] {
        check_affine(&v.geometry).map_err(|e| DatasetError::Volume {
            path: v.source.clone(),
            msg: e.to_string(),
        })?;
    }
    let same_grid = grid_mismatch(&a.geometry, &b.geometry).is_none();
    let (ba, bb) = (world_bounds(&a.geometry), world_bounds(&b.geometry));
    let apart = (0..3).any(|k| ba.1[k] < bb.0[k] || bb.1[k] < ba.0[k]);
    if (!same_grid || spec.align.is_some()) && apart {
        return Err(DatasetError::Mismatch(format!(
            "{} ({}) and {} ({}) do not overlap in the world: their affines place them apart, \
             so B cannot be resampled onto A. Check both headers (medtrans info); if they are \
             one patient, fix the origin so the heads overlap, then use --align rigid",
            s.a.display(),
            format_bounds(ba),
            s.b.display(),
            format_bounds(bb)
        )));
    }
    // A's world to B's: found by registration, or the identity when the
    // affines alone are trusted.
    let (b_from_a, registration) = match &spec.align {
        None => (IDENTITY, None),
        Some(opts) => {
            progress(&format!(
                "registering {} onto {}",
                s.b.display(),
                s.a.display()
            ));
            let r = register(&a, &b, opts, &mut |_| {}).map_err(|e| {
                DatasetError::Registration(format!(
                    "registering {} onto {}: {e}",
                    s.b.display(),
                    s.a.display()
                ))
            })?;
            (r.transform.matrix(), Some(r))
        }
    };
    let frame = match spec.grid {
        GridChoice::A => Frame::A,
        GridChoice::B => Frame::B,
    };
    let base = match frame {
        Frame::A => &a.geometry,
        Frame::B => &b.geometry,
    };
    let target = match spec.spacing {
        Some(mm) => regrid(base, mm),
        None => base.clone(),
    };
    let (mut a, inside_a) = place(a, Frame::A, &target, frame, &b_from_a, Interp3::Trilinear)?;
    let (mut b, inside_b) = place(b, Frame::B, &target, frame, &b_from_a, Interp3::Trilinear)?;
    // Where both images have data: outside either field of view there is
    // nothing to learn from or score against.
    let covered: Option<Vec<bool>> = match (&inside_a, &inside_b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (Some(x), Some(y)) => Some(x.iter().zip(y).map(|(p, q)| *p && *q).collect()),
    };
    let overlap = covered
        .as_ref()
        .map(|c| c.iter().filter(|&&v| v).count() as f64 / c.len().max(1) as f64);
    if overlap == Some(0.0) {
        return Err(DatasetError::Mismatch(format!(
            "{} and {} share no voxel once on one grid: their fields of view ({} and {}) do not meet",
            s.a.display(),
            s.b.display(),
            format_bounds(ba),
            format_bounds(bb),
        )));
    }
    let mask = match &s.mask {
        Some(p) => {
            // The mask lies in A's world (a brain mask of A, say).
            let (m, _) = place(
                read(p)?,
                Frame::A,
                &target,
                frame,
                &b_from_a,
                Interp3::Nearest,
            )?;
            let mut inside = mask_inside(&m);
            if let Some(c) = &covered {
                inside.iter_mut().zip(c).for_each(|(m, c)| *m &= *c);
            }
            Some(inside)
        }
        None => None,
    };
    // Label maps: each in its own image's world, whole classes 0..=255.
    let mut labels: [Option<Volume>; 2] = [None, None];
    for ((slot, path), own) in labels
        .iter_mut()
        .zip([&s.labels_a, &s.labels_b])
        .zip([Frame::A, Frame::B])
    {
        let Some(p) = path else { continue };
        let (l, _) = place(read(p)?, own, &target, frame, &b_from_a, Interp3::Nearest)?;
        if let Some(v) = l
            .data
            .iter()
            .find(|v| !(**v >= 0.0 && **v <= 255.0 && v.fract() == 0.0))
        {
            return Err(DatasetError::Volume {
                path: p.clone(),
                msg: format!("holds {v}; a label map holds whole class numbers 0..=255"),
            });
        }
        *slot = Some(l);
    }
    let alignment = (covered.is_some() || registration.is_some()).then(|| AlignmentRecord {
        grid: match frame {
            Frame::A => "a".into(),
            Frame::B => "b".into(),
        },
        spacing: spec.spacing,
        overlap: overlap.unwrap_or(1.0),
        registration: registration.as_ref().map(|r| RegistrationRecord {
            kind: r.transform.kind,
            b_from_a,
            rotation_deg: r.transform.rotation_degrees(),
            translation_mm: r.transform.translation(),
            initial_mi: r.initial_mi,
            final_mi: r.final_mi,
            converged: r.converged(),
        }),
    });
    let norm = |vol: &mut Volume, n: &Normalization| {
        normalise(vol, n, mask.as_deref()).map_err(|msg| DatasetError::Volume {
            path: vol.source.clone(),
            msg,
        })
    };
    let map_a = norm(&mut a, &spec.norm_a)?;
    let map_b = norm(&mut b, &spec.norm_b)?;
    let axis = spec.axis;
    let depth = a.shape()[axis];
    let (lo, hi) = spec.slice_range.unwrap_or((0, depth));
    if lo >= hi || hi > depth {
        return Err(DatasetError::Invalid(format!(
            "slice range {lo}..{hi} does not fit the {depth} slices of {} along axis {axis}",
            s.a.display()
        )));
    }
    let slices = |v: &Volume| {
        (0..depth)
            .map(|k| Slice::from_plane(v, axis, k))
            .collect::<Vec<_>>()
    };
    let (sa, sb) = (slices(&a), slices(&b));
    let smask = mask.as_ref().map(|m| {
        // The mask as a volume on A's grid (geometry only; no copy of A's voxels).
        let mv = Volume {
            data: m.iter().map(|&k| k as u8 as f32).collect(),
            geometry: a.geometry.clone(),
            format: a.format,
            dtype: "mask".into(),
            source: a.source.clone(),
        };
        slices(&mv)
    });
    let kept: Vec<usize> = (lo..hi)
        .filter(|&k| {
            let frac = match &smask {
                Some(m) => foreground_fraction(&m[k], 0.5),
                None => foreground_fraction(&sb[k], -1.0 + 1e-6),
            };
            frac >= spec.min_foreground
        })
        .collect();
    let (w, h) = (sa[0].width, sa[0].height);
    let labels = labels.map(|l| l.map(|v| slices(&v)));
    Ok(Loaded {
        record: SubjectRecord {
            name: s.name.clone().unwrap_or_else(|| format!("subject{i:03}")),
            a: s.a.clone(),
            b: s.b.clone(),
            mask: s.mask.clone(),
            geometry: a.geometry.clone(),
            map_a,
            map_b,
            fit: SquareFit::new(w, h, spec.size),
            split: None,
            alignment,
        },
        a: sa,
        b: sb,
        mask: smask,
        labels,
        kept,
    })
}

/// Build the dataset folder. Refuses to write into a non-empty folder, so an
/// earlier dataset is never overwritten. `progress(done, total, what)` is
/// called as volumes are read.
pub fn prepare(
    spec: &PrepareSpec,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Manifest> {
    if spec.subjects.is_empty() {
        return Err(DatasetError::Invalid("no subjects given".into()));
    }
    if spec.axis > 2 {
        return Err(DatasetError::Invalid(format!(
            "axis {} is not 0, 1 or 2",
            spec.axis
        )));
    }
    if !(8..=2048).contains(&spec.size) {
        return Err(DatasetError::Invalid(format!(
            "size {} is outside 8..2048",
            spec.size
        )));
    }
    if !(0.0..=1.0).contains(&spec.min_foreground) {
        return Err(DatasetError::Invalid(format!(
            "minimum foreground fraction {} is not within 0..1",
            spec.min_foreground
        )));
    }
    spec.split.validate(spec.subjects.len())?;
    if spec.out.exists()
        && std::fs::read_dir(&spec.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(DatasetError::Invalid(format!(
            "{} already exists and is not empty; choose a new folder (nothing was written)",
            spec.out.display()
        )));
    }
    let total = spec.subjects.len();
    let mut loaded = Vec::with_capacity(total);
    // The subjects that made it, for what follows (labels by volume).
    let mut kept: Vec<&SubjectSpec> = Vec::with_capacity(total);
    let mut skipped = Vec::new();
    for (i, s) in spec.subjects.iter().enumerate() {
        progress(i, total, &s.a.display().to_string());
        let what = s.a.display().to_string();
        match load_subject(spec, i, s, &mut |msg| progress(i, total, msg)) {
            Ok(l) => {
                loaded.push(l);
                kept.push(s);
            }
            // One subject's failed registration does not sink a cohort:
            // it is left out, and the manifest says so.
            Err(DatasetError::Registration(reason)) if total > 1 => {
                let name = s.name.clone().unwrap_or_else(|| format!("subject{i:03}"));
                progress(i, total, &format!("skipped {name}: {reason}"));
                skipped.push(SkippedSubject { name, reason });
            }
            Err(e) => return Err(e),
        }
        progress(i, total, &what);
    }
    if loaded.is_empty() {
        return Err(DatasetError::Registration(format!(
            "every subject's registration failed: {}",
            skipped
                .iter()
                .map(|s: &SkippedSubject| format!("{} ({})", s.name, s.reason))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    if !skipped.is_empty() {
        spec.split.validate(loaded.len()).map_err(|e| {
            DatasetError::Invalid(format!(
                "{e} ({} of {total} subjects were skipped because their registration failed)",
                skipped.len()
            ))
        })?;
    }
    progress(total, total, "writing slices");
    // Per-slice labels by (subject, side, index); read before anything is
    // written so that a bad row leaves no half-made dataset.
    let mut slice_labels: BTreeMap<(usize, usize, usize), f32> = BTreeMap::new();
    if let Some(csv) = &spec.slice_labels {
        let table = SliceLabelTable::read(csv)?;
        let volumes: Vec<(PathBuf, usize)> = kept
            .iter()
            .zip(&loaded)
            .flat_map(|(s, l)| [(s.a.clone(), l.a.len()), (s.b.clone(), l.b.len())])
            .collect();
        for (v, index, label) in table.resolve(&volumes)? {
            slice_labels.insert((v / 2, v % 2, index), label);
        }
    }

    // Assign every kept slice to a split.
    let mut splits: BTreeMap<String, Vec<SliceRef>> =
        SPLITS.iter().map(|s| (s.to_string(), vec![])).collect();
    match spec.split.method {
        SplitMethod::Volume => {
            let assign = spec.split.volume_assignment(loaded.len());
            for (i, (l, split)) in loaded.iter_mut().zip(assign).enumerate() {
                l.record.split = Some(split.to_string());
                splits
                    .get_mut(split)
                    .unwrap()
                    .extend(l.kept.iter().map(|&k| SliceRef {
                        subject: i,
                        index: k,
                    }));
            }
        }
        SplitMethod::Slab => {
            for (i, l) in loaded.iter().enumerate() {
                for (split, range) in spec.split.slab_ranges(l.kept.len()) {
                    splits
                        .get_mut(split)
                        .unwrap()
                        .extend(l.kept[range].iter().map(|&k| SliceRef {
                            subject: i,
                            index: k,
                        }));
                }
            }
        }
    }
    if splits["train"].is_empty() {
        return Err(DatasetError::Invalid(
            "no training slices are left after the foreground filter and split: lower --min-foreground or widen the slice range".into(),
        ));
    }

    std::fs::create_dir_all(&spec.out).map_err(|e| DatasetError::Write {
        path: spec.out.clone(),
        source: e,
    })?;
    let n = spec.size;
    let has_mask = loaded.iter().all(|l| l.mask.is_some());
    let has_labels = [0, 1].map(|k| loaded.iter().all(|l| l.labels[k].is_some()));
    if (0..2).any(|k| !has_labels[k] && loaded.iter().any(|l| l.labels[k].is_some())) {
        return Err(DatasetError::Invalid(
            "label maps were given for some subjects but not all: give them for every subject or none".into(),
        ));
    }
    let mut stored = [0usize; 2];
    for (split, refs) in &splits {
        if refs.is_empty() {
            continue;
        }
        let dir = spec.out.join(split);
        std::fs::create_dir_all(&dir).map_err(|e| DatasetError::Write {
            path: dir.clone(),
            source: e,
        })?;
        let mut a = Vec::with_capacity(refs.len() * n * n);
        let mut b = Vec::with_capacity(refs.len() * n * n);
        let mut m: Vec<u8> = Vec::new();
        let mut lab: [Vec<u8>; 2] = Default::default();
        let mut per_slice: [Vec<f32>; 2] = Default::default();
        for r in refs {
            for (k, v) in per_slice.iter_mut().enumerate() {
                v.push(
                    slice_labels
                        .get(&(r.subject, k, r.index))
                        .copied()
                        .unwrap_or(f32::NAN),
                );
            }
            let l = &loaded[r.subject];
            let pipe = SlicePipeline {
                axis: spec.axis,
                fit: l.record.fit,
            };
            let ms = has_mask.then(|| pipe.fit_mask(&l.mask.as_ref().unwrap()[r.index]));
            if let Some(ms) = &ms {
                m.extend(ms.data.iter().map(|&v| (v > 0.5) as u8));
            }
            for k in 0..2 {
                if let Some(planes) = &l.labels[k] {
                    // Nearest neighbour, background 0: classes never blend.
                    let fitted = pipe.fit_mask(&planes[r.index]);
                    lab[k].extend(fitted.data.iter().map(|&v| v as u8));
                }
            }
            a.extend(pipe.forward(&l.a[r.index], ms.as_ref()).data);
            b.extend(pipe.forward(&l.b[r.index], ms.as_ref()).data);
        }
        let shape = [refs.len(), n, n];
        write_npy(&dir.join("A.npy"), &shape, &a).map_err(DatasetError::Io)?;
        write_npy(&dir.join("B.npy"), &shape, &b).map_err(DatasetError::Io)?;
        if has_mask {
            write_npy(&dir.join("mask.npy"), &shape, &m).map_err(DatasetError::Io)?;
        }
        for (k, name) in ["A_labels.npy", "B_labels.npy"].iter().enumerate() {
            if has_labels[k] {
                write_npy(&dir.join(name), &shape, &lab[k]).map_err(DatasetError::Io)?;
            }
        }
        for (k, name) in SLICE_LABEL_FILES.iter().enumerate() {
            if slice_labels.keys().any(|key| key.1 == k) {
                write_npy(&dir.join(name), &[refs.len()], &per_slice[k])
                    .map_err(DatasetError::Io)?;
                stored[k] += per_slice[k].iter().filter(|v| !v.is_nan()).count();
            }
        }
    }
    let manifest = Manifest {
        format_version: 1,
        created_by: format!("medtrans {}", env!("CARGO_PKG_VERSION")),
        axis: spec.axis,
        size: n,
        min_foreground: spec.min_foreground,
        slice_range: spec.slice_range,
        normalization_a: spec.norm_a.clone(),
        normalization_b: spec.norm_b.clone(),
        split: spec.split.clone(),
        has_mask,
        subjects: loaded.into_iter().map(|l| l.record).collect(),
        skipped,
        splits,
        slice_labels: spec.slice_labels.as_ref().map(|csv| SliceLabelSummary {
            csv: csv.clone(),
            stored,
            dropped: slice_labels.len() - stored[0] - stored[1],
        }),
    };
    manifest.save(&spec.out.join(MANIFEST_FILE))?;
    Ok(manifest)
}
