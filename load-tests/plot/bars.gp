# Clustered bars, one panel per data block: x = concurrency, one bar per system.
#   gnuplot -e "data='F'; out='P.png'; panels='p50 p90 p99'; heading='…'" bars.gp
# F: blocks separated by two blank lines, each "conc sys1 sys2 …" then one row per
# concurrency (report.py writes them); '?' is a missing value. Log y scale.
n = words(panels)
rows = (n > 3) ? 2 : 1
cols = (n + rows - 1) / rows
set terminal pngcairo size (430 * cols + 40), (420 * rows + 40) font "sans,10"
set output out
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set format y "10^{%L}"
set grid ytics
set xlabel "concurrency"
set ylabel "µs"
set key top left font ",9"
set multiplot layout rows, cols title heading font ",12"
do for [k = 1:n] {
  set title word(panels, k)
  plot for [i = 2:*] data index (k - 1) using i:xtic(1) title columnheader(i)
}
unset multiplot
