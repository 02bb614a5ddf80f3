//! OpenCode's HTTP server API as the bridge uses it: prompts, sessions, permissions, questions and the event stream.
