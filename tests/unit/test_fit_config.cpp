// The fit's configuration (app/fit_config.h): each default written once, settings checked; and the run folder
// (io/run_folder.h) that a fit leaves.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "mslr/app/fit_config.h"
#include "mslr/io/run_folder.h"

namespace mslr {
namespace {

namespace fs = std::filesystem;

Options parsed(const std::vector<std::string>& args) {
  Options o("fit", kFitSummary, fit_options());
  EXPECT_TRUE(o.parse(args));
  return o;
}

TEST(FitConfig, DefaultTextReadsBackAsTheSameValue) {
  EXPECT_EQ(default_text(1e-8), "1e-08");
  EXPECT_EQ(default_text(0.999), "0.999");
  EXPECT_EQ(default_text(0.1), "0.1");
  EXPECT_EQ(default_text(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(default_text(100), "100");
  EXPECT_EQ(default_text(uint64_t{0}), "0");
  EXPECT_EQ(default_text(true), "true");
}

// The option table takes its defaults from FitSettings: a fit given no options runs with exactly those.
TEST(FitConfig, TheOptionDefaultsAreTheSettingsDefaults) {
  const FitSettings s = fit_settings_from(parsed({}));
  const FitSettings d;
  EXPECT_EQ(s.fit.epochs, d.fit.epochs);
  EXPECT_EQ(s.fit.batches, d.fit.batches);
  EXPECT_EQ(s.fit.lr.points(), d.fit.lr.points());
  EXPECT_EQ(s.fit.adam.beta1, d.fit.adam.beta1);
  EXPECT_EQ(s.fit.adam.beta2, d.fit.adam.beta2);
  EXPECT_EQ(s.fit.adam.eps, d.fit.adam.eps);
  EXPECT_EQ(s.fit.adam.weight_decay, d.fit.adam.weight_decay);
  EXPECT_EQ(s.fit.min_var, d.fit.min_var);
  EXPECT_EQ(s.fit.seed, d.fit.seed);
  EXPECT_EQ(s.fit.split.train_fraction, d.fit.split.train_fraction);
  EXPECT_EQ(s.fit.data_on_device, d.fit.data_on_device);
  EXPECT_EQ(s.fit.deterministic, d.fit.deterministic);
  EXPECT_EQ(s.fit.dtype, d.fit.dtype);
  EXPECT_EQ(s.fit.step, d.fit.step);
  EXPECT_EQ(s.checkpoints.every, d.checkpoints.every);
  EXPECT_EQ(s.checkpoints.keep, d.checkpoints.keep);
  EXPECT_TRUE(s.checkpoints.epochs.empty());
  EXPECT_EQ(s.copies.props, d.copies.props);
  EXPECT_EQ(s.copies.data, d.copies.data);
  EXPECT_EQ(s.update_interval, d.update_interval);
  EXPECT_EQ(s.overwrite, d.overwrite);
}

TEST(FitConfig, SettingsAreCheckedNamingTheOption) {
  auto message = [](const std::vector<std::string>& args) -> std::string {
    try {
      fit_settings_from(parsed(args));
    } catch (const UsageError& e) {
      return e.what();
    }
    return "(accepted)";
  };
  EXPECT_EQ(message({"--lr", "0"}), "mslr fit: --lr must be a positive number, got 0");
  EXPECT_EQ(message({"--epochs", "99999999999"}), "mslr fit: --epochs: 99999999999 is too large");
  EXPECT_EQ(message({"--checkpoint-epochs", "3,x"}),
            "mslr fit: --checkpoint-epochs: 'x' is not an epoch number (1 or more)");
  EXPECT_EQ(message({"--dtype", "float16"}), "mslr fit: --dtype: 'float16' is not float32 or float64");
  EXPECT_EQ(message({"--update-interval", "0"}),
            "mslr fit: --checkpoint-every and --keep-checkpoints must be >= 0, --update-interval >= 1");
  const FitSettings s = fit_settings_from(parsed({"--checkpoint-every", "5", "--checkpoint-epochs", "3,12"}));
  for (int epoch : {3, 5, 10, 12})
    EXPECT_TRUE(s.checkpoints.due(epoch)) << epoch;
  for (int epoch : {1, 4, 11})
    EXPECT_FALSE(s.checkpoints.due(epoch)) << epoch;
}

TEST(FitConfig, DataResidencyIsAutoUnlessGiven) {
  EXPECT_FALSE(fit_settings_from(parsed({})).fit.data_on_device.has_value());
  EXPECT_EQ(fit_settings_from(parsed({"--data-on-device"})).fit.data_on_device, std::optional<bool>(true));
  EXPECT_EQ(fit_settings_from(parsed({"--data-on-device=false"})).fit.data_on_device,
            std::optional<bool>(false));
  EXPECT_FALSE(fit_settings_from(parsed({"--data-on-device=auto"})).fit.data_on_device.has_value());
  EXPECT_THROW(fit_settings_from(parsed({"--data-on-device=maybe"})), UsageError);
  EXPECT_TRUE(fit_settings_from(parsed({})).fit.deterministic);
  EXPECT_FALSE(fit_settings_from(parsed({"--deterministic=false"})).fit.deterministic);
}

TEST(FitConfig, SubjectsAreNamesOrIndicesNeverGuessed) {
  std::vector<SubjectInfo> subjects(3);
  subjects[0].name = "fish";
  subjects[1].name = "2";  // a name that reads as the index of subject 2
  subjects[2].name = "eel";
  auto of = [&](const std::string& list) {
    return subjects_from(parsed({"--subjects", list}), subjects, "d.h5");
  };
  EXPECT_EQ(of("fish,0"), (std::vector<int>{0, 0}));
  EXPECT_EQ(of("eel,1"), (std::vector<int>{2, 1}));
  EXPECT_THROW(of("2"), UsageError);
  EXPECT_THROW(of("cod"), UsageError);
  EXPECT_THROW(of("3"), UsageError);
  EXPECT_THROW(of(",,"), UsageError);
  EXPECT_TRUE(subjects_from(parsed({}), subjects, "d.h5").empty());
}

TEST(RunFolder, NamesItsFilesAndFindsItselfFromACheckpoint) {
  EXPECT_EQ(RunFolder::checkpoint_name(10, 0), "epoch-000010.h5");
  EXPECT_EQ(RunFolder::checkpoint_name(3, 2), "epoch-000003-batch-00002.h5");
  EXPECT_EQ(RunFolder::of_checkpoint("runs/a/checkpoints/final.h5"), fs::path("runs/a"));
  EXPECT_EQ(RunFolder::of_checkpoint("checkpoints/final.h5"), fs::path("."));
  EXPECT_TRUE(RunFolder::of_checkpoint("elsewhere/final.h5").empty());
  const RunFolder run("runs/a");
  EXPECT_EQ(run.latest(), fs::path("runs/a/checkpoints/latest"));
  EXPECT_EQ(run.config(), fs::path("runs/a/config.ini"));
}

TEST(RunFolder, PublishesPrunesAndClearsOnlyWhatAFitWrote) {
  char tmpl[] = "/tmp/mslr-run-XXXXXX";
  const RunFolder run(fs::path(mkdtemp(tmpl)) / "run");
  run.create();
  EXPECT_FALSE(run.holds_fit());
  for (int e : {1, 2, 3}) {
    const std::string name = RunFolder::checkpoint_name(e, 0);
    std::ofstream(run.checkpoints() / name) << "checkpoint";
    run.publish(name, 2);
  }
  EXPECT_TRUE(run.holds_fit());
  EXPECT_EQ(fs::read_symlink(run.latest()), fs::path("epoch-000003.h5"));
  EXPECT_FALSE(fs::exists(run.checkpoints() / "epoch-000001.h5"));  // beyond the newest 2
  EXPECT_TRUE(fs::exists(run.checkpoints() / "epoch-000002.h5"));
  std::ofstream(run.config()) << "epochs = 3\n";
  std::ofstream(run.metrics()) << "{}\n";
  std::ofstream(run.root() / "notes.txt") << "mine\n";
  std::ofstream(run.checkpoints() / "keep-me.h5") << "not a checkpoint of a fit\n";
  run.clear();
  EXPECT_FALSE(run.holds_fit());
  EXPECT_FALSE(fs::exists(run.config()));
  EXPECT_FALSE(fs::exists(run.metrics()));
  EXPECT_FALSE(fs::exists(run.checkpoints() / "epoch-000003.h5"));
  EXPECT_TRUE(fs::exists(run.root() / "notes.txt"));
  EXPECT_TRUE(fs::exists(run.checkpoints() / "keep-me.h5"));
  fs::remove_all(run.root().parent_path());
}

}  // namespace
}  // namespace mslr
