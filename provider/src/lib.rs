//! The cloudcode provider: resources, data sources and functions on top of the tfplugin layer.
