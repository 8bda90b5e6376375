// Domain names outside the hot path: conversion between presentation text
// and uncompressed wire format (length-prefixed labels ending with 0).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace updns::zone {

// "Host.dyn.example", "host.dyn.example." and "\046" escapes (RFC 1035 §5.1).
// Relative and absolute names are both taken as absolute.
Result<std::string> WireNameFromText(std::string_view text);
// WireNameFromText, lowercased: the form keys and zone lookups compare.
Result<std::string> LowercaseWireNameFromText(std::string_view text);
// Presentation form with a trailing dot; special characters escaped.
std::string TextFromWireName(std::string_view wire);
// Lowercases A-Z in place in a wire-format name.
void LowercaseWireName(std::string& wire);
// True when `name` equals `ancestor` or lies below it (case-insensitive).
bool IsSubdomain(std::string_view name, std::string_view ancestor);

}  // namespace updns::zone
