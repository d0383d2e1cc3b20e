// Parallel HDF5 under 1, 2 and 3 ranks: the data round trip, checkpoints that read back exactly, and resumes
// (at an epoch boundary and mid-epoch after a stop request, across a learning-rate change, at the same and at
// a different number of ranks) that end exactly where an unbroken fit ends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "mpi_env.h"
#include "mslr/core/error.h"
#include "mslr/io/checkpoint.h"
#include "mslr/io/data_file.h"
#include "problem.h"

namespace mslr::test {
namespace {

// A scratch folder that every rank agrees on (made by rank 0).
std::string shared_tmpdir() {
  std::string dir;
  if (world().is_root()) {
    char tmpl[] = "/tmp/mslr-mpi-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  return world().broadcast_string(dir, 0);
}

ProblemConfig config() {
  ProblemConfig c;
  c.subjects = 5;
  c.time_points = 150;
  return c;
}

FitOptions options() {
  FitOptions o;
  o.epochs = 4;
  o.batches = 3;
  o.lr = LrSchedule::parse("0:0.02,2:0.005");  // the resume crosses a rate change (and its Adam reset)
  o.seed = 7;
  o.split.train_fraction = 0.8;
  return o;
}

CheckpointHeader header_for(const Fitter& f, const Problem& p) {
  CheckpointHeader h;
  h.config = "test";
  h.model = "test model";
  h.shared_layout = f.shared().layout();
  h.subjects = p.infos;
  for (const auto& i : p.infos) {
    h.subject_layouts.push_back(SubjectModel(f.shared(), shape_of(i), i.name).layout());
    h.extras.push_back({});
  }
  return h;
}

std::unique_ptr<Fitter> make(const Communicator& comm, const Problem& p, const FitOptions& o) {
  auto f = std::make_unique<Fitter>(comm, p.spec, o, p.infos);
  return f;
}

void load(Fitter& f, const Problem& p) {
  f.load_data([&](int s) { return p.data[s]; });
}

TEST(IoMpi, DataFileRoundTrip) {
  const Problem p = make_problem(config());
  const std::string dir = shared_tmpdir(), path = dir + "/data.h5";
  std::vector<SubjectData> subjects = p.data;
  subjects[1].segments = at::tensor(std::vector<int64_t>{0, 70, 75, 150}, at::kLong).view({2, 2});
  if (world().is_root()) write_data_file(path, subjects, {{"model", "input = x\n"}});
  world().barrier();
  DataFile data(path, world());
  ASSERT_EQ(data.subjects().size(), 5u);
  EXPECT_EQ(data.model_config(), "input = x\n");
  EXPECT_EQ(data.subjects()[1].times_in({0, 150}).numel(), 69 + 74);
  // Each rank reads a different share of the subjects, with hyperslab reads of the first rows.
  for (size_t s = world().rank(); s < subjects.size(); s += world().size()) {
    DataReadOptions r;
    r.true_means = true;
    const SubjectData d = data.read(static_cast<int>(s), r);
    EXPECT_EQ(d.name, subjects[s].name);
    for (const auto& [g, x] : subjects[s].groups)
      EXPECT_TRUE(at::equal(d.groups.at(g), x)) << g;
    EXPECT_TRUE(at::equal(d.props.at("neurons"), subjects[s].props.at("neurons")));
    EXPECT_TRUE(at::equal(d.true_means.at("neurons").nan_to_num(),
                          subjects[s].true_means.at("neurons").nan_to_num()));
    r.rows = 40;
    r.groups = {"stim"};
    const SubjectData head = data.read(static_cast<int>(s), r);
    EXPECT_EQ(head.groups.size(), 1u);
    EXPECT_TRUE(at::equal(head.groups.at("stim"), subjects[s].groups.at("stim").narrow(0, 0, 40)));
  }
  if (world().is_root()) std::system(("rm -rf " + dir).c_str());
}

// The extras a checkpoint keeps (modes for plots, copies of the data) read back as written, through the one
// layout io/ builds.
TEST(IoMpi, CheckpointExtrasReadBackWhatTheirLayoutPromised) {
  const Problem p = make_problem(config());
  const std::string dir = shared_tmpdir(), path = dir + "/extras.h5";
  auto f = make(world(), p, options());
  f->initialize();
  load(*f, p);
  CheckpointHeader h = header_for(*f, p);
  const ExtrasRequest copies{true, true};
  for (size_t i = 0; i < p.infos.size(); ++i) {
    const SubjectModel m(f->shared(), shape_of(p.infos[i]), p.infos[i].name);
    h.extras[i] = subject_extras_layout(m, p.infos[i], copies, at::kFloat);
  }
  const FitState st = f->state();
  std::map<int, std::map<std::string, at::Tensor>> extras;
  for (const auto& s : st.subjects)
    extras[s.index] =
        subject_extras(f->data_modes(s.index), f->held_data(s.index), f->subjects()[s.index], copies);
  write_checkpoint(path, world(), h, st, extras);
  const CheckpointFile ck(path, world());
  for (const auto& s : st.subjects) {
    const SubjectExtras x = ck.read_extras(s.index);
    const auto modes = f->data_modes(s.index);
    ASSERT_FALSE(modes.empty());
    ASSERT_EQ(x.modes.size(), modes.size());
    for (const auto& [name, m] : modes)
      EXPECT_TRUE(at::equal(x.modes.at(name), m.to(at::kFloat))) << name;
    const SubjectData held = f->held_data(s.index);
    ASSERT_EQ(x.groups.size(), held.groups.size());
    for (const auto& [g, v] : held.groups)
      EXPECT_TRUE(at::equal(x.groups.at(g), v.to(at::kFloat))) << g;
    ASSERT_EQ(x.props.size(), held.props.size());
    for (const auto& [g, v] : held.props)
      EXPECT_TRUE(at::equal(x.props.at(g), v.to(at::kFloat))) << g;
    EXPECT_EQ(x.segments.defined(), held.segments.defined());
  }
  world().barrier();
  if (world().is_root()) std::system(("rm -rf " + dir).c_str());
}

TEST(IoMpi, CheckpointReadsBackEveryParameterAndMoment) {
  const Problem p = make_problem(config());
  const std::string dir = shared_tmpdir(), path = dir + "/ckpt.h5";
  auto f = make(world(), p, options());
  f->initialize();
  load(*f, p);
  FitOptions o = options();
  f->run({});
  const FitState st = f->state();
  write_checkpoint(path, world(), header_for(*f, p), st, {});
  EXPECT_EQ(access((path + ".tmp").c_str(), F_OK), -1);  // committed under its final name only
  CheckpointFile ck(path, world());
  EXPECT_EQ(ck.epoch(), 4);
  EXPECT_EQ(ck.world_size(), world().size());
  std::vector<int> mine = f->local_subjects();
  const FitState back = ck.read_state(mine);
  EXPECT_TRUE(at::equal(back.shared_params.to(at::kFloat), st.shared_params));
  EXPECT_TRUE(at::equal(back.shared_m.to(at::kFloat), st.shared_m));
  EXPECT_TRUE(at::equal(back.shared_v.to(at::kFloat), st.shared_v));
  EXPECT_EQ(back.shared_step, st.shared_step);
  EXPECT_EQ(back.log.objective, st.log.objective);
  EXPECT_EQ(back.log.subject_nll, st.log.subject_nll);
  ASSERT_EQ(back.subjects.size(), st.subjects.size());
  for (size_t i = 0; i < st.subjects.size(); ++i) {
    EXPECT_EQ(back.subjects[i].name, st.subjects[i].name);
    EXPECT_TRUE(at::equal(back.subjects[i].params.to(at::kFloat), st.subjects[i].params));
    EXPECT_TRUE(at::equal(back.subjects[i].adam_m.to(at::kFloat), st.subjects[i].adam_m));
    EXPECT_TRUE(at::equal(back.subjects[i].adam_v.to(at::kFloat), st.subjects[i].adam_v));
    EXPECT_EQ(back.subjects[i].adam_step, st.subjects[i].adam_step);
  }
  // A checkpoint of another model is refused, naming the difference.
  ParamLayout other = f->shared().layout();
  other.add("extra", {2}, Init::constant(0));
  std::string msg;
  try {
    ck.check_model("test model", other, {});
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("shared parameters differ from this model's"), std::string::npos) << msg;
  msg.clear();
  try {
    ck.check_model("other model", f->shared().layout(), {});
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("written for a different model: 'test model' there, 'other model' here"),
            std::string::npos)
      << msg;
  world().barrier();
  if (world().is_root()) std::system(("rm -rf " + dir).c_str());
}

// Every parameter of every subject, gathered, and the shared ones, from a fitter run through `comm`.
struct Final {
  at::Tensor shared;
  std::vector<at::Tensor> subjects;
  std::vector<double> objective;
};

Final final_of(const Communicator& comm, const Fitter& f, const Problem& p) {
  return {f.state().shared_params, all_subject_params(comm, f, p), f.log().objective};
}

bool same(const Final& a, const Final& b) {
  bool ok =
      at::equal(a.shared, b.shared) && a.objective == b.objective && a.subjects.size() == b.subjects.size();
  for (size_t s = 0; ok && s < a.subjects.size(); ++s)
    ok = at::equal(a.subjects[s], b.subjects[s]);
  return ok;
}

TEST(IoMpi, ResumeEndsExactlyWhereAnUnbrokenFitEnds) {
  const Problem p = make_problem(config());
  const std::string dir = shared_tmpdir();
  // The unbroken fit.
  auto a = make(world(), p, options());
  a->initialize();
  load(*a, p);
  a->run({});
  const Final unbroken = final_of(world(), *a, p);

  // A fit that checkpoints after epoch 1, and one that is asked to stop by rank (size-1) alone at its 4th
  // minibatch (the first of epoch 1): the stop is agreed on every rank through the step's all-reduce, read
  // one step later, so every rank stops after the second minibatch of epoch 1.
  for (const bool mid_epoch : {false, true}) {
    const std::string path = dir + (mid_epoch ? "/stop.h5" : "/epoch1.h5");
    auto b = make(world(), p, options());
    b->initialize();
    load(*b, p);
    FitHooks hooks;
    int polls = 0;
    hooks.checkpoint_after = [&](int e) { return !mid_epoch && e == 1; };
    hooks.stop_requested = [&] { return mid_epoch && world().rank() == world().size() - 1 && ++polls >= 4; };
    bool wrote = false;
    hooks.on_checkpoint = [&](const FitState& st) {
      if (wrote) return;
      write_checkpoint(path, world(), header_for(*b, p), st, {});
      wrote = true;
    };
    const bool stopped = b->run(hooks);
    EXPECT_EQ(stopped, mid_epoch);
    CheckpointFile ck(path, world());
    if (mid_epoch) {
      EXPECT_EQ(ck.epoch(), 1);
      EXPECT_EQ(b->state().batch, 2);
    }
    // Resume at the same number of ranks...
    auto c = make(world(), p, options());
    c->restore(ck.read_state(c->local_subjects()));
    load(*c, p);
    c->run({});
    EXPECT_TRUE(same(final_of(world(), *c, p), unbroken)) << (mid_epoch ? "mid-epoch" : "epoch boundary");
    // ...and in a world of one rank (rank 0 alone reads the checkpoint written by all ranks).
    int ok = 1;
    if (world().is_root()) {
      LocalCommunicator one;
      CheckpointFile ck1(path, one);
      auto d = make(one, p, options());
      std::vector<int> all(p.infos.size());
      std::iota(all.begin(), all.end(), 0);
      d->restore(ck1.read_state(all));
      load(*d, p);
      d->run({});
      ok = same(final_of(one, *d, p), unbroken) ? 1 : 0;
    }
    EXPECT_EQ(world().sum(ok), world().size())
        << "resumed on 1 rank differs (" << (mid_epoch ? "mid-epoch" : "boundary") << ")";
  }
  world().barrier();
  if (world().is_root()) std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace mslr::test
