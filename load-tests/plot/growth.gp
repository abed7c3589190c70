# Added latency (over direct) vs request body size, log-log, with a linear guide.
#   gnuplot -e "data='F'; out='P.png'" growth.gp
# F: "kib tollgate_p50 tollgate_p99 nginx_p50 nginx_p99" (growth_report.py writes it).
set terminal pngcairo size 760, 520 font "sans,10"
set output out
set title "Latency added over direct vs request body size (model last, concurrency 1)" font ",12"
set logscale xy
set xlabel "body size (KiB)"
set ylabel "added latency (µs)"
set format y "10^{%L}"
set xtics ("1" 1, "16" 16, "256" 256, "1 Mi" 1024, "4 Mi" 4096)
set grid xtics ytics
set key top left
set datafile missing "?"
stats data using 1:2 nooutput
# A line of slope 1 (linear growth) through tollgate's p50 at the largest size.
k = STATS_max_x; a = STATS_max_y
plot data using 1:2 with linespoints lw 2 pt 7 title "tollgate p50", \
     data using 1:3 with linespoints lw 2 pt 5 dt 2 title "tollgate p99", \
     data using 1:4 with linespoints lw 2 pt 7 title "nginx p50", \
     data using 1:5 with linespoints lw 2 pt 5 dt 2 title "nginx p99", \
     a * x / k with lines lc "black" lw 1 dt 3 title "linear (slope 1)"
