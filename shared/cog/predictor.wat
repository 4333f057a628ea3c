;; TIFF predictor 3 (floating point) for float32 tiles, in WebAssembly SIMD: the bytes of
;; predictor.ts `floatingPointDiff` over the pixel-interleaved tile (docs/ingest.md, "How the speed was found").
;; Assembled by `npm run wasm` (wabt) into predictor-wasm.ts; a test checks that file against this one.
;;
;; `predict` does `rows` rows of a tile; the caller passes a tile in runs of rows, so the memory
;; stays a few rows whatever the tile. Memory (all offsets from the caller, in bytes, 16-aligned):
;;   in   nb bands of `rows` rows of ts little-endian float32 words: band b, row y, column x at
;;        in + b·bandStride + 4·(y·ts + x); columns past the image edge hold 0 (the caller writes them)
;;   ilv  one interleaved row, ts·nb words (scratch; unused when nb = 1)
;;   tmp  one row split into byte planes, 4·ts·nb bytes, preceded by at least nb zero bytes
;;   out  the predicted rows, rows·ts·nb·4 bytes
;;
;; Per row: (a) interleave the bands' samples, (b) split the words into four byte planes, most
;; significant byte first (a 4×4 byte transpose, sixteen samples at a time), (c) subtract from every
;; byte the byte nb positions earlier in the row's planes, which is the same band's previous pixel,
;; or, at a plane's start, that band's last pixel in the plane before; the row's first nb bytes
;; subtract the zeros before `tmp`, i.e. stay as they are.
(module
  (memory (export "memory") 1)

  (func (export "predict")
    (param $nb i32) (param $ts i32) (param $rows i32)
    (param $in i32) (param $bandStride i32) (param $ilv i32) (param $tmp i32) (param $out i32)
    (local $rowSamples i32) (local $rowBytes i32) (local $plane i32)
    (local $y i32) (local $b i32) (local $x i32) (local $i i32)
    (local $src i32) (local $dst i32) (local $end i32) (local $row i32) (local $stride i32)
    (local $t1 v128) (local $t2 v128) (local $u1 v128) (local $u2 v128)
    (local $va v128) (local $vb v128) (local $vc v128) (local $vd v128)

    (local.set $rowSamples (i32.mul (local.get $ts) (local.get $nb)))
    (local.set $rowBytes (i32.shl (local.get $rowSamples) (i32.const 2)))
    (local.set $plane (local.get $rowSamples))
    (local.set $stride (i32.shl (local.get $nb) (i32.const 2)))

    (block $rows_done
      (loop $rows_loop
        (br_if $rows_done (i32.ge_u (local.get $y) (local.get $rows)))

        ;; (a) the row's samples, interleaved; one band is its own interleaving
        (if (i32.eq (local.get $nb) (i32.const 1))
          (then (local.set $row (i32.add (local.get $in) (i32.mul (local.get $y) (local.get $rowBytes)))))
          (else
            (local.set $b (i32.const 0))
            (loop $bands_loop
              ;; band b's row y, to every nb-th word of ilv from word b
              (local.set $src (i32.add (i32.add (local.get $in) (i32.mul (local.get $b) (local.get $bandStride)))
                (i32.shl (i32.mul (local.get $y) (local.get $ts)) (i32.const 2))))
              (local.set $dst (i32.add (local.get $ilv) (i32.shl (local.get $b) (i32.const 2))))
              (local.set $end (i32.add (local.get $src) (i32.shl (local.get $ts) (i32.const 2))))
              (loop $x_loop
                (i32.store (local.get $dst) (i32.load (local.get $src)))
                (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
                (local.set $src (i32.add (local.get $src) (i32.const 4)))
                (br_if $x_loop (i32.lt_u (local.get $src) (local.get $end))))
              (local.set $b (i32.add (local.get $b) (i32.const 1)))
              (br_if $bands_loop (i32.lt_u (local.get $b) (local.get $nb))))
            (local.set $row (local.get $ilv))))

        ;; (b) byte planes: sixteen samples (four vectors) at a time; rowSamples is a multiple of 16
        (local.set $x (i32.const 0))
        (loop $split_loop
          (local.set $src (i32.add (local.get $row) (i32.shl (local.get $x) (i32.const 2))))
          (local.set $va (v128.load (local.get $src)))
          (local.set $vb (v128.load offset=16 (local.get $src)))
          (local.set $vc (v128.load offset=32 (local.get $src)))
          (local.set $vd (v128.load offset=48 (local.get $src)))
          ;; bytes 3 (plane 0) then bytes 2 (plane 1) of samples 0–7; of samples 8–15
          (local.set $t1 (i8x16.shuffle 3 7 11 15 19 23 27 31 2 6 10 14 18 22 26 30 (local.get $va) (local.get $vb)))
          (local.set $t2 (i8x16.shuffle 3 7 11 15 19 23 27 31 2 6 10 14 18 22 26 30 (local.get $vc) (local.get $vd)))
          ;; bytes 1 (plane 2) then bytes 0 (plane 3)
          (local.set $u1 (i8x16.shuffle 1 5 9 13 17 21 25 29 0 4 8 12 16 20 24 28 (local.get $va) (local.get $vb)))
          (local.set $u2 (i8x16.shuffle 1 5 9 13 17 21 25 29 0 4 8 12 16 20 24 28 (local.get $vc) (local.get $vd)))
          (local.set $dst (i32.add (local.get $tmp) (local.get $x)))
          (v128.store (local.get $dst)
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t2)))
          (local.set $dst (i32.add (local.get $dst) (local.get $plane)))
          (v128.store (local.get $dst)
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t2)))
          (local.set $dst (i32.add (local.get $dst) (local.get $plane)))
          (v128.store (local.get $dst)
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u1) (local.get $u2)))
          (local.set $dst (i32.add (local.get $dst) (local.get $plane)))
          (v128.store (local.get $dst)
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u1) (local.get $u2)))
          (local.set $x (i32.add (local.get $x) (i32.const 16)))
          (br_if $split_loop (i32.lt_u (local.get $x) (local.get $rowSamples))))

        ;; (c) differences, sixteen bytes at a time, into the tile's row y
        (local.set $dst (i32.add (local.get $out) (i32.mul (local.get $y) (local.get $rowBytes))))
        (local.set $i (i32.const 0))
        (loop $diff_loop
          (local.set $src (i32.add (local.get $tmp) (local.get $i)))
          (v128.store (i32.add (local.get $dst) (local.get $i))
            (i8x16.sub (v128.load (local.get $src)) (v128.load (i32.sub (local.get $src) (local.get $nb)))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br_if $diff_loop (i32.lt_u (local.get $i) (local.get $rowBytes))))

        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows_loop))))
)
