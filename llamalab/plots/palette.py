"""The figures' line and point colours (Tableau 10's first seven), one tuple for every figure."""

COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#9D755D")
