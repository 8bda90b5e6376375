// The wire form of a presentation name through ldns, independent of our
// own name code, for the tests that cross-check against it.
#pragma once

#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <memory>
#include <string>

namespace updns::test {

// Wire form of a presentation name, through ldns (independent of our code).
inline std::string Wire(const char* text) {
  std::unique_ptr<ldns_rdf, void (*)(ldns_rdf*)> rdf(ldns_dname_new_frm_str(text),
                                                     ldns_rdf_deep_free);
  EXPECT_NE(rdf, nullptr) << text;
  if (!rdf) return {};
  return std::string(reinterpret_cast<const char*>(ldns_rdf_data(rdf.get())),
                     ldns_rdf_size(rdf.get()));
}

}  // namespace updns::test
