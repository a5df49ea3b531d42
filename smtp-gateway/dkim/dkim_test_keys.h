// Test helpers: fresh keys written as PEM files in a temporary directory, and tables naming them.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace postgate::gateway::dkim::testing {

class TestDirectory {
 public:
  TestDirectory() {
    std::string pattern = absl::StrCat(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp", "/dkim_test.XXXXXX");
    path_ = mkdtemp(pattern.data());
  }
  ~TestDirectory() { std::system(absl::StrCat("rm -rf '", path_, "'").c_str()); }
  std::string Write(const std::string& name, const std::string& content) const {
    const std::string file = absl::StrCat(path_, "/", name);
    std::ofstream(file) << content;
    return file;
  }
  // A new private key ("RSA" with `bits`, or "ED25519") in PEM, written to `name`.
  std::string WriteKey(const std::string& name, const char* type, size_t bits = 2048) const {
    EVP_PKEY* key = std::string(type) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits)
                                               : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio, &data);
    const std::string pem(data, static_cast<size_t>(length));
    BIO_free(bio);
    EVP_PKEY_free(key);
    return Write(name, pem);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace postgate::gateway::dkim::testing
