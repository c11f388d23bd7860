// Which GGUF file of a repository `pensieve pull REPO` downloads when no file is named.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "hub/hub_client.h"

namespace pensieve::hub {

struct GgufChoice {
  RepoFile chosen;
  std::vector<RepoFile> candidates;  // every single-file GGUF model, sorted by path
};

// Candidates: files ending in ".gguf" (any case), except vision projectors (a name containing
// "mmproj") and split shards ("-00001-of-00003.gguf"; pensieve reads one file). One candidate is
// the choice; among several the first rule that matches wins, the smallest file breaking ties:
//   1. the name contains Q4_K_M (any case): the usual size/quality balance;
//   2. the name contains Q4_0;
//   3. the smallest file (sizes the hub did not give count as largest; then by path).
// Error (kNotFound) when there is no candidate, naming the repository and its GGUF files.
Expected<GgufChoice> choose_gguf(const std::string& repo, const std::vector<RepoFile>& files);

// True for "model-00001-of-00003.gguf".
bool is_split_shard(std::string_view path);

}  // namespace pensieve::hub
