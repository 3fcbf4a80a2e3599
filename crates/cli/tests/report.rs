//! report.html as a user meets it: written during training, linked by
//! evaluate, rebuilt and overlaid by `medtrans report`, and opened in a real
//! browser (headless Chromium) where one is installed: every image and plot
//! loads, no console errors, and the drawn curves hold the CSVs' numbers.
mod common;
use common::{medtrans, ok, prepare_demo};
use std::path::{Path, PathBuf};
use std::process::Command;

fn prepare(out: &Path) {
    ok(&prepare_demo(out, 32, &[]));
}

fn train(mode: &str, data: &Path, run: &Path, epochs: usize) {
    let sets = [
        format!("data.path={:?}", data.to_str().unwrap()),
        format!("out={:?}", run.to_str().unwrap()),
        "generator.ngf=8".into(),
        "generator.n_blocks=1".into(),
        "discriminator.ndf=8".into(),
        format!("train.epochs={epochs}"),
        "train.steps_per_epoch=4".into(),
        "train.samples=2".into(),
    ];
    let mut a = vec!["train", "--mode", mode];
    for s in &sets {
        a.extend(["--set", s.as_str()]);
    }
    ok(&medtrans(&a));
}

/// (x, y) columns of a CSV by name.
fn csv_points(path: &Path, x: &str, y: &str) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (xi, yi) = (
        head.iter().position(|c| *c == x).unwrap(),
        head.iter().position(|c| *c == y).unwrap(),
    );
    lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[xi].parse().unwrap(), c[yi].parse().unwrap())
        })
        .collect()
}

/// A figure's axis mapping, read from its data- attributes.
struct Axes {
    x: [f64; 2],
    y: [f64; 2],
    px: [f64; 2],
    py: [f64; 2],
}

impl Axes {
    fn from_attrs(attr: &dyn Fn(&str) -> f64) -> Axes {
        Axes {
            x: [attr("x0"), attr("x1")],
            y: [attr("y0"), attr("y1")],
            px: [attr("px0"), attr("px1")],
            py: [attr("py0"), attr("py1")],
        }
    }

    /// A drawn pixel back to data units.
    fn value(&self, p: (f64, f64)) -> (f64, f64) {
        let fx = (p.0 - self.px[0]) / (self.px[1] - self.px[0]);
        let fy = (p.1 - self.py[0]) / (self.py[1] - self.py[0]);
        (
            self.x[0] + fx * (self.x[1] - self.x[0]),
            self.y[0] + fy * (self.y[1] - self.y[0]),
        )
    }

    /// Data units per pixel, in x and y.
    fn resolution(&self) -> (f64, f64) {
        (
            ((self.x[1] - self.x[0]) / (self.px[1] - self.px[0])).abs(),
            ((self.y[1] - self.y[0]) / (self.py[1] - self.py[0])).abs(),
        )
    }
}

/// A figure: its id, axes, series keys and each series' drawn points.
type Figure = (String, Axes, Vec<String>, Vec<Vec<(f64, f64)>>);

/// Figures of a report: id, axes, series keys, and each series' polyline
/// points (the last polylines of the SVG, one per key, in key order; the
/// axes and grid come first).
fn figures(html: &str) -> Vec<Figure> {
    let mut out = Vec::new();
    for part in html.split("<figure class=\"plot\"").skip(1) {
        let fig = &part[..part.find("</figure>").unwrap()];
        let head = &fig[..fig.find('>').unwrap()];
        let attr = |name: &str| -> String {
            let key = format!("{name}=\"");
            let s = &head[head
                .find(&key)
                .unwrap_or_else(|| panic!("{name} in {head}"))
                + key.len()..];
            s[..s.find('"').unwrap()].to_string()
        };
        let num = |name: &str| attr(&format!("data-{name}")).parse::<f64>().unwrap();
        let axes = Axes::from_attrs(&num);
        let keys: Vec<String> = attr("data-series").split('|').map(String::from).collect();
        let polys: Vec<Vec<(f64, f64)>> = fig
            .split("<polyline")
            .skip(1)
            .map(|p| {
                let s = &p[p.find("points=\"").unwrap() + 8..];
                s[..s.find('"').unwrap()]
                    .split_whitespace()
                    .map(|xy| {
                        let (a, b) = xy.split_once(',').unwrap();
                        (a.parse().unwrap(), b.parse().unwrap())
                    })
                    .collect()
            })
            .collect();
        assert!(
            polys.len() >= keys.len(),
            "{}: {} polylines for {} series",
            attr("id"),
            polys.len(),
            keys.len()
        );
        let series = polys[polys.len() - keys.len()..].to_vec();
        out.push((attr("id"), axes, keys, series));
    }
    out
}

/// Every drawn point of `series` lies within a pixel and a half of a CSV
/// point with the same x, and (for `all`) every CSV point is drawn.
fn assert_curve_holds(
    what: &str,
    axes: &Axes,
    drawn: &[(f64, f64)],
    csv: &[(f64, f64)],
    all: bool,
) {
    let (rx, ry) = axes.resolution();
    assert!(!drawn.is_empty(), "{what}: nothing drawn");
    if all {
        assert_eq!(drawn.len(), csv.len(), "{what}: one point per CSV row");
    }
    for &p in drawn {
        let (x, y) = axes.value(p);
        let want = csv
            .iter()
            .find(|c| (c.0 - x).abs() <= 1.5 * rx)
            .unwrap_or_else(|| panic!("{what}: drawn x {x} is no CSV row"));
        assert!(
            (want.1 - y).abs() <= 1.5 * ry,
            "{what}: at x {x} drawn {y}, CSV {} (one pixel is {ry})",
            want.1
        );
    }
}

#[test]
fn training_writes_a_report_that_evaluate_links_and_report_overlays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    prepare(&data);
    let (r1, r2) = (dir.path().join("reggan"), dir.path().join("pix2pix"));
    train("reggan", &data, &r1, 3);
    train("pix2pix", &data, &r2, 2);

    // Written by training, with what the issue asks the page to show.
    let html = std::fs::read_to_string(r1.join("report.html")).unwrap();
    let progress: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r1.join("progress.json")).unwrap()).unwrap();
    assert_eq!(progress["step"], 12);
    assert_eq!(progress["finished"], true);
    assert_eq!(progress["device"], "cpu");
    assert!(
        html.contains("step 12 of 12") && html.contains("steps/s") && html.contains("device cpu"),
        "status line"
    );
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a finished run's page does not reload itself"
    );
    for section in [
        "id=\"losses\"",
        "id=\"validation\"",
        "id=\"lr\"",
        "id=\"samples\"",
        "id=\"config\"",
        "id=\"dataset\"",
    ] {
        assert!(html.contains(section), "{section}");
    }
    assert!(
        html.contains("warped by R&#39;s field") || html.contains("warped by R's field"),
        "R's columns named"
    );
    for e in 1..=3 {
        assert!(
            html.contains(&format!("samples/epoch_{e:03}.png")),
            "epoch {e} samples"
        );
    }
    assert!(html.contains("Best epoch"), "best epoch marked");
    assert!(r1.join("samples/epoch_003_field.npy").is_file());
    assert!(
        html.contains("<figure class=\"field\">") && html.contains("R&#39;s displacement field"),
        "R's field drawn"
    );
    // Nothing is fetched: no src or href reaches out (the SVG namespace URI is a name).
    for attr in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "url(http",
    ] {
        assert!(!html.contains(attr), "no network resources: {attr}");
    }

    // The curves hold the CSVs' numbers.
    let figs = figures(&html);
    let losses = r1.join("losses.csv");
    let head = std::fs::read_to_string(&losses).unwrap();
    let terms: Vec<&str> = head
        .lines()
        .next()
        .unwrap()
        .split(',')
        .skip(2)
        .filter(|c| !c.starts_with("lr"))
        .collect();
    assert!(
        terms.contains(&"correction") && terms.contains(&"smoothness"),
        "{terms:?}"
    );
    for t in &terms {
        let (_, axes, keys, series) = figs
            .iter()
            .find(|f| f.0 == format!("plot-loss-{t}"))
            .unwrap_or_else(|| panic!("no plot for {t}"));
        assert_eq!(keys[0], format!("raw:{t}"));
        assert_curve_holds(t, axes, &series[0], &csv_points(&losses, "step", t), true);
    }
    let val = r1.join("validation.csv");
    for m in ["nmae", "psnr", "ssim"] {
        let (_, axes, keys, series) = figs
            .iter()
            .find(|f| f.0 == format!("plot-val-{m}"))
            .unwrap();
        assert_eq!(keys.last().unwrap(), "marker", "best epoch line");
        assert_curve_holds(m, axes, &series[0], &csv_points(&val, "epoch", m), true);
    }

    // evaluate in target units and whole volumes; the report shows it.
    let out = ok(&medtrans(&[
        "evaluate",
        "--model",
        r1.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--units",
        "target",
        "--range",
        "0,100",
        "--dilate",
        "1",
        "--volume",
    ]));
    assert!(out.contains("target units, range 0 to 100"), "{out}");
    let ev = r1.join("evaluation-test");
    let units = std::fs::read_to_string(ev.join("scores_units.csv")).unwrap();
    assert!(
        units.starts_with("model,subject,slice,mae,psnr,ssim,ms_ssim\n"),
        "{units}"
    );
    assert!(units.lines().count() > 5, "{units}");
    let vols = std::fs::read_to_string(ev.join("volumes.csv")).unwrap();
    assert_eq!(vols.lines().count(), 2, "one volume: {vols}");
    let html = std::fs::read_to_string(r1.join("report.html")).unwrap();
    assert!(html.contains("evaluation-test/summary.md") && html.contains("Whole volumes in 3-D"));
    // A bad range is refused before any model runs.
    let o = medtrans(&[
        "evaluate",
        "--model",
        r1.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--units",
        "target",
        "--range",
        "5,1",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--range 5,1"));
    // An evaluation written elsewhere is linked.
    let elsewhere = dir.path().join("eval-elsewhere");
    ok(&medtrans(&[
        "evaluate",
        "--model",
        r1.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--split",
        "val",
        "--out",
        elsewhere.to_str().unwrap(),
    ]));
    let html = std::fs::read_to_string(r1.join("report.html")).unwrap();
    assert!(
        html.contains("../eval-elsewhere/summary.md"),
        "link to the outside evaluation"
    );

    // Rebuilt from the files alone, and two runs overlaid.
    std::fs::remove_file(r1.join("report.html")).unwrap();
    ok(&medtrans(&["report", r1.to_str().unwrap()]));
    assert!(r1.join("report.html").is_file());
    let cmp = dir.path().join("compare.html");
    let o = medtrans(&["report", r1.to_str().unwrap(), r2.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--out"));
    ok(&medtrans(&[
        "report",
        r1.to_str().unwrap(),
        r2.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]));
    let page = std::fs::read_to_string(&cmp).unwrap();
    assert!(page.contains("reggan/report.html") && page.contains("pix2pix/report.html"));
    let figs = figures(&page);
    let (_, axes, keys, series) = figs.iter().find(|f| f.0 == "plot-val-psnr").unwrap();
    assert_eq!(keys, &["points:reggan", "points:pix2pix"]);
    assert_curve_holds(
        "reggan psnr",
        axes,
        &series[0],
        &csv_points(&val, "epoch", "psnr"),
        true,
    );
    assert_curve_holds(
        "pix2pix psnr",
        axes,
        &series[1],
        &csv_points(&r2.join("validation.csv"), "epoch", "psnr"),
        true,
    );
    let (_, _, keys, _) = figs.iter().find(|f| f.0 == "plot-loss-g_adv").unwrap();
    assert_eq!(keys.len(), 2, "g_adv of both runs");
    // Never overwritten silently; not a run folder is named.
    let o = medtrans(&[
        "report",
        r1.to_str().unwrap(),
        r2.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    let o = medtrans(&["report", data.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not a run folder"));

    browser_check(&r1.join("report.html"), &val);
    browser_check(&cmp, &val);
}

/// Headless Chromium, or `None` with a notice; under CI a missing browser
/// fails (.ci/run installs it).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("MEDTRANS_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ]
            .map(PathBuf::from),
        )
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is missing in CI (.ci/run installs it)"
        );
        eprintln!("skipped the browser check: no Chromium (apt-get install chromium, or set MEDTRANS_CHROMIUM)");
    }
    found
}

/// What the page looks like to the browser, gathered by a script the test
/// adds to a copy of the page (beside it, so relative paths still hold).
const PROBE_HEAD: &str = "<script>window.__errs=[];window.addEventListener('error',function(e){__errs.push('error: '+(e.message||(e.target&&(e.target.src||e.target.href))||'?'))},true);\
var __ce=console.error;console.error=function(){__errs.push('console.error: '+Array.prototype.join.call(arguments,' '));__ce.apply(console,arguments)};</script>";
const PROBE_TAIL: &str = "<script>window.addEventListener('load',function(){var r={errors:__errs,images:[],plots:[]};\
document.querySelectorAll('img').forEach(function(i){r.images.push([i.getAttribute('src'),i.complete&&i.naturalWidth>0])});\
document.querySelectorAll('figure.plot').forEach(function(f){var s=f.querySelector('svg');var b=s?s.getBoundingClientRect():{width:0,height:0};\
r.plots.push([f.id,b.width,b.height,Array.prototype.map.call(f.querySelectorAll('polyline'),function(p){return p.getAttribute('points')})])});\
var p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify(r);document.body.appendChild(p)});</script>";

fn browser_check(page: &Path, val_csv: &Path) {
    let Some(chrome) = chromium() else { return };
    let html = std::fs::read_to_string(page).unwrap();
    let probe = page.with_file_name("probe.html");
    let probed = html
        .replacen("<head>", &format!("<head>{PROBE_HEAD}"), 1)
        .replacen("</body>", &format!("{PROBE_TAIL}</body>"), 1);
    std::fs::write(&probe, probed).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new(&chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--window-size=1400,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!(
            "file://{}",
            probe.canonicalize().unwrap().display()
        ))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&o.stdout);
    let start = dom.find("<pre id=\"probe\">").unwrap_or_else(|| {
        panic!(
            "the page did not load in Chromium: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    }) + 16;
    let json = &dom[start..start + dom[start..].find("</pre>").unwrap()];
    let json = json
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        r["errors"].as_array().unwrap().len(),
        0,
        "console errors: {}",
        r["errors"]
    );
    for img in r["images"].as_array().unwrap() {
        assert_eq!(img[1], true, "image did not load: {}", img[0]);
    }
    let plots = r["plots"].as_array().unwrap();
    assert!(!plots.is_empty());
    for p in plots {
        assert!(
            p[1].as_f64().unwrap() > 100.0 && p[2].as_f64().unwrap() > 100.0,
            "plot {} not laid out: {p}",
            p[0]
        );
    }
    // The PSNR curve the browser holds is the CSV's.
    let figs = figures(&html);
    let (_, axes, keys, _) = figs.iter().find(|f| f.0 == "plot-val-psnr").unwrap();
    let p = plots.iter().find(|p| p[0] == "plot-val-psnr").unwrap();
    let polys = p[3].as_array().unwrap();
    let drawn: Vec<(f64, f64)> = polys[polys.len() - keys.len()]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(|xy| {
            let (a, b) = xy.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_curve_holds(
        "PSNR in the browser",
        axes,
        &drawn,
        &csv_points(val_csv, "epoch", "psnr"),
        true,
    );
    std::fs::remove_file(&probe).unwrap();
}
