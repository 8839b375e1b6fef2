"""Drawing that headless output and the dashboard share: a surface's contour and paths (surface), a sweep's
chart (sweep), the range test's curve (lr_range), and each run's colour and label (run_style). Plain strings and
Rich text; nothing here imports Textual."""
