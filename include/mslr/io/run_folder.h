// A fit's run folder (docs/DESIGN.md §5): where a fit keeps its configuration, its log and its checkpoints.
//
//   RUN/config.ini                  the resolved configuration
//   RUN/metrics.jsonl               one JSON line per logged epoch
//   RUN/checkpoints/epoch-NNNNNN.h5, epoch-NNNNNN-batch-NNNNN.h5 (a signal mid-epoch), final.h5
//   RUN/checkpoints/latest          a symbolic link to the newest complete checkpoint
#pragma once

#include <filesystem>
#include <string>

namespace mslr {

class RunFolder {
 public:
  explicit RunFolder(std::filesystem::path root) : root_(std::move(root)) {}
  // The run folder a checkpoint file lies in (RUN for RUN/checkpoints/FILE), or an empty path for a
  // checkpoint kept elsewhere.
  static std::filesystem::path of_checkpoint(const std::string& checkpoint);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path config() const { return root_ / "config.ini"; }
  std::filesystem::path metrics() const { return root_ / "metrics.jsonl"; }
  std::filesystem::path checkpoints() const { return root_ / "checkpoints"; }
  std::filesystem::path latest() const { return checkpoints() / "latest"; }
  // The file name of the checkpoint of a fit standing at `epoch` and `batch` (FitState): "epoch-NNNNNN.h5"
  // after NNNNNN whole epochs (batch 0), "epoch-NNNNNN-batch-BBBBB.h5" after BBBBB minibatches of epoch
  // NNNNNN.
  static std::string checkpoint_name(int epoch, int batch);
  static std::string final_name() { return "final.h5"; }

  // Whether it holds a fit: a `latest` checkpoint link, even a dangling one.
  bool holds_fit() const;
  // Removes what a fit left (--overwrite): its configuration, its log and every checkpoint, so that none is
  // ever taken for the next fit's.
  void clear() const;
  // Creates the folder and its checkpoints/ (and missing parents); throws naming what failed.
  void create() const;
  // Makes the complete checkpoint `name` (in checkpoints/) the `latest`, then deletes the oldest periodic
  // checkpoints beyond the newest `keep` (0: keeps all).
  void publish(const std::string& name, int keep) const;

 private:
  std::filesystem::path root_;
};

}  // namespace mslr
