//! What the noise sweep concludes: R's registration table and the RegGAN
//! paper's claims checked against the sweep's means, each with its margin.
use super::*;

/// results.md's table of R against the injected misalignment, and the same
/// numbers as registration.csv.
pub(super) fn registration_section(rows: &[RegistrationRow]) -> (String, String) {
    let mut csv =
        String::from("mode,noise_level,misalignment_px,residual_px,l1_unwarped,l1_warped\n");
    let mut md = String::from(
        "\n## R against the injected misalignment\n\n\
         Each base run's R, on every validation pair moved as in training at its \
         level (one fixed draw of the noise, seed 7): the mean length of the \
         field that exactly undoes the two known affines (the misalignment), and \
         of R's error against it (the residual), over the moved target's \
         foreground. \"Undone\" is 1 - residual / misalignment. L1 is against \
         the moved target, before and after warping G(x) with R's field.\n\n\
         | mode | noise | misalignment (px) | R's residual (px) | undone | L1 G(x) | L1 warp(G(x)) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        csv += &format!(
            "{},{},{:.4},{:.4},{:.5},{:.5}\n",
            r.mode, r.noise_level, r.misalignment_px, r.residual_px, r.l1_unwarped, r.l1_warped
        );
        let undone = if r.misalignment_px > 0.05 {
            format!("{:.0} %", 100.0 * (1.0 - r.residual_px / r.misalignment_px))
        } else {
            "-".into()
        };
        md += &format!(
            "| {} | {} | {:.2} | {:.2} | {undone} | {:.4} | {:.4} |\n",
            r.mode, r.noise_level, r.misalignment_px, r.residual_px, r.l1_unwarped, r.l1_warped
        );
    }
    (md, csv)
}

/// Pix2Pix's PSNR drop from noise level 0 to 5 in the RegGAN paper (its
/// Table 2 and Fig. 4: about 10 dB).
pub const PAPER_PIX2PIX_DROP_DB: f64 = 10.0;

/// The RegGAN paper's four claims against this sweep's means. A claim
/// whose modes or levels were not run says so.
pub fn check_claims(rows: &[SweepRow]) -> Vec<String> {
    let get = |m: &str, l: u32| rows.iter().find(|r| r.mode == m && r.noise_level == l);
    let verdict = |ok: bool| if ok { "**holds**" } else { "**fails**" };
    // In level order, whatever order the config listed them in.
    let levels = |m: &str| -> Vec<&SweepRow> {
        let mut v: Vec<&SweepRow> = rows.iter().filter(|r| r.mode == m).collect();
        v.sort_by_key(|r| r.noise_level);
        v
    };
    let mut out = Vec::new();
    match (get("reggan", 5), get("pix2pix", 0)) {
        (Some(r), Some(p)) => out.push(format!(
            "1. RegGAN at noise 5 >= Pix2Pix at noise 0: {} (PSNR {:.2} vs {:.2} dB, NMAE {:.4} vs {:.4}).",
            verdict(r.psnr() >= p.psnr() && r.nmae() <= p.nmae()),
            r.psnr(),
            p.psnr(),
            r.nmae(),
            p.nmae()
        )),
        _ => out.push("1. RegGAN at noise 5 vs Pix2Pix at noise 0: not run.".into()),
    }
    let p = levels("pix2pix");
    match (p.first(), p.last()) {
        (Some(a), Some(b)) if a.noise_level < b.noise_level => out.push(format!(
            "2. Pix2Pix degrades as noise grows: by more than 1 dB {}; by the paper's size \
             (about {PAPER_PIX2PIX_DROP_DB:.0} dB from 0 to 5) {} ({:.0} % of it) \
             (PSNR {:.2} dB at noise {} -> {:.2} dB at noise {}, {:+.2} dB; NMAE {:.4} -> {:.4}).",
            verdict(b.psnr() < a.psnr() - 1.0),
            verdict(a.psnr() - b.psnr() >= PAPER_PIX2PIX_DROP_DB),
            100.0 * (a.psnr() - b.psnr()) / PAPER_PIX2PIX_DROP_DB,
            a.psnr(),
            a.noise_level,
            b.psnr(),
            b.noise_level,
            b.psnr() - a.psnr(),
            a.nmae(),
            b.nmae()
        )),
        _ => out.push("2. Pix2Pix across noise levels: not run.".into()),
    }
    let r = levels("reggan");
    if r.len() >= 2 {
        let (lo, hi) = r.iter().fold((f64::MAX, f64::MIN), |(a, b), x| {
            (a.min(x.psnr()), b.max(x.psnr()))
        });
        out.push(format!(
            "3. RegGAN stays flat across levels (here: mean PSNR within 1 dB): {} \
             (PSNR from {lo:.2} to {hi:.2} dB, a spread of {:.2} dB).",
            verdict(hi - lo <= 1.0),
            hi - lo
        ));
    } else {
        out.push("3. RegGAN across noise levels: not run.".into());
    }
    let pairs: Vec<(&SweepRow, &SweepRow)> = r
        .iter()
        .filter_map(|x| get("cycle", x.noise_level).map(|c| (*x, c)))
        .collect();
    if pairs.is_empty() {
        out.push("4. RegGAN vs CycleGAN (C): not run.".into());
    } else {
        let lost: Vec<String> = pairs
            .iter()
            .filter(|(x, c)| !(x.psnr() > c.psnr() && x.nmae() < c.nmae()))
            .map(|(x, c)| {
                format!(
                    "noise {}: PSNR {:.2} vs {:.2}, NMAE {:.4} vs {:.4}",
                    x.noise_level,
                    x.psnr(),
                    c.psnr(),
                    x.nmae(),
                    c.nmae()
                )
            })
            .collect();
        let margins: Vec<String> = pairs
            .iter()
            .map(|(x, c)| format!("{:+.2}", x.psnr() - c.psnr()))
            .collect();
        out.push(format!(
            "4. RegGAN beats CycleGAN (C) at every level (lower NMAE and higher PSNR): {} \
             (PSNR margin per level: {} dB{}).",
            verdict(lost.is_empty()),
            margins.join(", "),
            if lost.is_empty() {
                String::new()
            } else {
                format!("; not better at {}", lost.join("; "))
            }
        ));
    }
    out
}

/// One step of a ranking: better, worse, or a tie within the seed noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Better,
    Worse,
    Tie,
}

/// The RegGAN paper's unpaired ranking (section 4.4, Fig. 6): on unpaired
/// data RegGAN beats CycleGAN (C), which beats Pix2Pix, at each level run.
pub fn check_unpaired_claims(rows: &[SweepRow]) -> Vec<String> {
    let get = |m: &str, l: u32| rows.iter().find(|r| r.mode == m && r.noise_level == l);
    let mut levels: Vec<u32> = rows.iter().map(|r| r.noise_level).collect();
    levels.sort_unstable();
    levels.dedup();
    let mut out = Vec::new();
    for l in levels {
        let (Some(r), Some(c), Some(p)) = (get("reggan", l), get("cycle", l), get("pix2pix", l))
        else {
            out.push(format!(
                "1. Unpaired, noise {l}: RegGAN > C > Pix2Pix needs all three modes; not all ran."
            ));
            continue;
        };
        let better = |x: &SweepRow, y: &SweepRow| x.psnr() > y.psnr() && x.nmae() < y.nmae();
        // With several seeds per cell, a step whose PSNR margin lies within
        // what the seed alone moves a cell (twice the larger seed std) is a
        // tie: the claim is not shown, whichever mean is higher.
        let within_noise = |x: &SweepRow, y: &SweepRow| match (x.seed_std(), y.seed_std()) {
            (Some(a), Some(b)) => (x.psnr() - y.psnr()).abs() <= 2.0 * a.max(b),
            _ => false,
        };
        let step = |x: &SweepRow, y: &SweepRow| -> Step {
            if within_noise(x, y) {
                Step::Tie
            } else if better(x, y) {
                Step::Better
            } else {
                Step::Worse
            }
        };
        let (rc, cp) = (step(r, c), step(c, p));
        let verdict = match (rc, cp) {
            (Step::Better, Step::Better) => "**holds**".to_string(),
            (Step::Worse, Step::Worse) => "**fails** in both steps".into(),
            (Step::Worse, _) => "**fails**: RegGAN does not beat C".into(),
            (_, Step::Worse) => "**fails**: C does not beat Pix2Pix".into(),
            (Step::Tie, Step::Tie) => "**not shown**: both steps lie within the seed noise".into(),
            (Step::Tie, _) => "**not shown**: RegGAN - C lies within the seed noise".into(),
            (_, Step::Tie) => "**not shown**: C - Pix2Pix lies within the seed noise".into(),
        };
        // Each step's margin against the seed noise, where seeds allow.
        let noise = |x: &SweepRow, y: &SweepRow| -> String {
            match (x.seed_std(), y.seed_std()) {
                (Some(a), Some(b)) => {
                    let margin = x.psnr() - y.psnr();
                    let limit = 2.0 * a.max(b);
                    format!(
                        "{margin:+.2} dB, {} the seed noise (2 x seed std {limit:.2} dB)",
                        if margin.abs() > limit {
                            "beyond"
                        } else {
                            "within"
                        }
                    )
                }
                _ => format!("{:+.2} dB, one seed", x.psnr() - y.psnr()),
            }
        };
        out.push(format!(
            "1. Unpaired, noise {l}: RegGAN > C > Pix2Pix (lower NMAE and higher PSNR at each step, beyond the seed noise): \
             {verdict} (PSNR {:.2} / {:.2} / {:.2} dB, NMAE {:.4} / {:.4} / {:.4}; \
             RegGAN - C: {}; C - Pix2Pix: {}).",
            r.psnr(),
            c.psnr(),
            p.psnr(),
            r.nmae(),
            c.nmae(),
            p.nmae(),
            noise(r, c),
            noise(c, p)
        ));
        // The paper's other RegGAN, C+R, where it was run.
        if let Some(cr) = get("cycle+reg", l) {
            out.push(format!(
                "2. Unpaired, noise {l}: C+R > C: {} \
                 (PSNR {:.2} vs {:.2} dB, NMAE {:.4} vs {:.4}; {}).",
                match step(cr, c) {
                    Step::Better => "**holds**",
                    Step::Worse => "**fails**",
                    Step::Tie => "**tie** (within the seed noise)",
                },
                cr.psnr(),
                c.psnr(),
                cr.nmae(),
                c.nmae(),
                noise(cr, c)
            ));
        }
    }
    out
}
