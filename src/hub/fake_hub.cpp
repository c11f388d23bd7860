#include "hub/fake_hub.h"

#include <httplib.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "hub/sha256.h"

namespace pensieve::hub {
namespace {

FakeHub::Seen seen(const httplib::Request& req) {
  return {req.method, req.path, req.get_header_value("Range"),
          req.get_header_value("Authorization")};
}

}  // namespace

FakeHub::FakeHub()
    : hub_(std::make_unique<httplib::Server>()), cdn_(std::make_unique<httplib::Server>()) {
  route_hub();
  route_cdn();
  hub_port_ = hub_->bind_to_any_port("127.0.0.1");
  cdn_port_ = cdn_->bind_to_any_port("127.0.0.1");
  PV_CHECK(hub_port_ > 0 && cdn_port_ > 0, "fake hub: cannot bind loopback ports");
  hub_thread_ = std::thread([this] { hub_->listen_after_bind(); });
  cdn_thread_ = std::thread([this] { cdn_->listen_after_bind(); });
  // Connections queue on the bound sockets already; waiting for the accept loops makes stop()
  // in the destructor find them running.
  while (!hub_->is_running() || !cdn_->is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

FakeHub::~FakeHub() {
  hub_->stop();
  cdn_->stop();
  hub_thread_.join();
  cdn_thread_.join();
}

std::string FakeHub::endpoint() const { return "http://127.0.0.1:" + std::to_string(hub_port_); }

void FakeHub::add_file(const std::string& repo, const std::string& name, std::string content) {
  std::lock_guard lock(mutex_);
  File& file = repos_[repo][name];
  Sha256 hash;
  hash.update(content);
  file.sha256 = hash.hex_digest();
  file.content = std::move(content);
  cdn_files_["/cdn/" + file.sha256] = &file;
}

void FakeHub::set_advertised_sha256(const std::string& name, const std::string& sha256) {
  std::lock_guard lock(mutex_);
  for (auto& [repo, files] : repos_) {
    auto it = files.find(name);
    if (it == files.end()) continue;
    // The CDN path keeps the true hash; only the header lies.
    for (auto& [path, file] : cdn_files_) {
      if (file == &it->second) {
        File* lying = &it->second;
        cdn_files_.erase(path);
        lying->sha256 = sha256;
        cdn_files_["/cdn/" + sha256] = lying;
        break;
      }
    }
  }
}

void FakeHub::cut_next_transfer_at(int64_t byte) {
  std::lock_guard lock(mutex_);
  cut_at_ = byte;
}

void FakeHub::ignore_range(bool ignore) {
  std::lock_guard lock(mutex_);
  ignore_range_ = ignore;
}

std::vector<FakeHub::Seen> FakeHub::hub_requests() const {
  std::lock_guard lock(mutex_);
  return hub_seen_;
}

std::vector<FakeHub::Seen> FakeHub::cdn_requests() const {
  std::lock_guard lock(mutex_);
  return cdn_seen_;
}

void FakeHub::route_hub() {
  hub_->Get(
      R"(/api/models/([^/]+/[^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
        std::lock_guard lock(mutex_);
        hub_seen_.push_back(seen(req));
        auto repo = repos_.find(req.matches[1]);
        if (repo == repos_.end()) {
          res.status = 401;  // what the hub answers anonymous requests for missing repositories
          res.set_header("X-Error-Code", "RepoNotFound");
          res.set_content(R"({"error":"Repository not found"})", "application/json");
          return;
        }
        nlohmann::json siblings = nlohmann::json::array();
        for (const auto& [name, file] : repo->second) {
          siblings.push_back({{"rfilename", name}, {"size", file.content.size()}});
        }
        siblings.push_back({{"rfilename", "README.md"}, {"size", 12}});
        nlohmann::json body = {{"id", repo->first}, {"sha", kCommit}, {"siblings", siblings}};
        res.set_content(body.dump(), "application/json");
      });
  hub_->Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
            [this](const httplib::Request& req, httplib::Response& res) {
              std::lock_guard lock(mutex_);
              hub_seen_.push_back(seen(req));
              auto repo = repos_.find(req.matches[1]);
              if (repo == repos_.end()) {
                res.status = 404;
                res.set_header("X-Error-Code", "RepoNotFound");
                res.set_header("X-Error-Message", "Repository not found");
                return;
              }
              auto file = repo->second.find(req.matches[3]);
              if (file == repo->second.end()) {
                res.status = 404;
                res.set_header("X-Error-Code", "EntryNotFound");
                res.set_header("X-Error-Message", "Entry not found");
                return;
              }
              res.status = 302;
              res.set_header("Location", "http://127.0.0.1:" + std::to_string(cdn_port_) + "/cdn/" +
                                             file->second.sha256);
              res.set_header("X-Repo-Commit", kCommit);
              res.set_header("X-Linked-Etag", "\"" + file->second.sha256 + "\"");
              res.set_header("X-Linked-Size", std::to_string(file->second.content.size()));
              res.set_header("ETag", "\"0123456789abcdef0123456789abcdef01234567\"");
            });
}

void FakeHub::route_cdn() {
  cdn_->Get(R"(/cdn/.+)", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    cdn_seen_.push_back(seen(req));
    auto it = cdn_files_.find(req.path);
    if (it == cdn_files_.end()) {
      res.status = 404;
      return;
    }
    if (ignore_range_) {
      // httplib answers a Range itself; forgetting the parsed ranges makes it send everything.
      // The Request object is the server's own (non-const) one.
      const_cast<httplib::Request&>(req).ranges.clear();
    }
    const std::string* content = &it->second->content;
    const int64_t cut = cut_at_;
    cut_at_ = -1;
    res.set_content_provider(content->size(), "application/octet-stream",
                             [content, cut](size_t offset, size_t length, httplib::DataSink& sink) {
                               size_t n = std::min<size_t>(length, 64 * 1024);
                               if (cut >= 0) {
                                 if (static_cast<int64_t>(offset) >= cut)
                                   return false;  // drop the connection
                                 n = std::min<size_t>(n, static_cast<size_t>(cut) - offset);
                               }
                               sink.write(content->data() + offset, n);
                               return true;
                             });
  });
}

}  // namespace pensieve::hub
