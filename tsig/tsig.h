// TSIG (RFC 8945): being written.
#pragma once
