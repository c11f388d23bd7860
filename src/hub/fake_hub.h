// A loopback imitation of the Hugging Face hub for tests: the API and resolve routes on one
// port, a "CDN" on another (so another origin) that serves file bytes with Range support, and
// knobs to misbehave: cut a transfer short, ignore Range, advertise a wrong hash.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace pensieve::hub {

class FakeHub {
 public:
  struct Seen {
    std::string method;
    std::string path;
    std::string range;          // the Range header, "" when absent
    std::string authorization;  // the Authorization header, "" when absent
  };

  FakeHub();
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const;  // "http://127.0.0.1:PORT"

  // An LFS file of `repo` (redirected to the CDN, hash in X-Linked-Etag).
  void add_file(const std::string& repo, const std::string& name, std::string content);
  // Advertise this sha256 for `name` instead of the content's.
  void set_advertised_sha256(const std::string& name, const std::string& sha256);
  // The next CDN transfer closes the connection once `byte` of the file has been sent.
  void cut_next_transfer_at(int64_t byte);
  // The CDN answers 200 with the whole file even when asked for a range.
  void ignore_range(bool ignore);

  std::vector<Seen> hub_requests() const;
  std::vector<Seen> cdn_requests() const;

  static constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";

 private:
  struct File {
    std::string content;
    std::string sha256;
  };
  void route_hub();
  void route_cdn();

  std::unique_ptr<httplib::Server> hub_;
  std::unique_ptr<httplib::Server> cdn_;
  int hub_port_ = 0;
  int cdn_port_ = 0;
  std::thread hub_thread_;
  std::thread cdn_thread_;
  mutable std::mutex mutex_;
  std::map<std::string, std::map<std::string, File>> repos_;  // repo -> name -> file
  std::map<std::string, const File*> cdn_files_;              // CDN path -> file
  int64_t cut_at_ = -1;
  bool ignore_range_ = false;
  std::vector<Seen> hub_seen_;
  std::vector<Seen> cdn_seen_;
};

}  // namespace pensieve::hub
