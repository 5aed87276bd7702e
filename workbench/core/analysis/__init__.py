"""Feature understanding: descriptors per codec frame, corpus frames, probes, feature statistics,
automatic labels and the HTML report (issue 7). Modules import their heavy dependencies lazily."""
