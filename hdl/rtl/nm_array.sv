`timescale 1ns/1ps
// nm_array: a weight-stationary systolic array of N:M PEs, R rows x C columns.
//
// Each PE holds one weight and its log2(M)-bit index (one slot); N consecutive PE rows form a slot
// group of N slots that reads one M-wide activation group. The stream beat carries GR = R/N groups,
// and every array row has a group select (loaded with its weights, shared by the row's C columns)
// naming the beat group it reads. The identity select is a fixed N:M array; a flexible N:M engine
// gives a group that keeps j > N weights in some column ceil(j/N) slot groups (passes) that select
// the same beat group, so the columns of a fold share one schedule (VEGETA-style multi-pass).
// Activations enter row r r cycles late (input skew), move one PE right per cycle and carry the
// bank tag of the weights they use; partial sums move one PE down per cycle; the bottom row is
// deskewed so a whole output row (C sums) leaves at once.
//
// Weights: one array row per wl beat (C weights, C indices, the row's group select), R beats fill a bank. Two banks: the
// next fold's weights load while this fold computes. A bank is reloaded only when no activation
// that uses it is still in the array.
// Stream: one beat per output row (R/N groups of M activations); in_last ends the fold, and the
// next fold uses the other bank. Backpressure: when the output register is full and out_ready is
// low, the whole array stalls. Latency: a beat accepted in cycle t leaves in cycle t + R + C.
module nm_array #(
    parameter int R  = 4,
    parameter int C  = 4,
    parameter int N  = 2,
    parameter int M  = 4,
    parameter int DW = 8,
    parameter int AW = 32,
    parameter int IW = (M > 1) ? $clog2(M) : 1,
    parameter int GR = R / N,
    parameter int GW = (GR > 1) ? $clog2(GR) : 1
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic               wl_valid,
    output logic               wl_ready,
    input  logic [C*DW-1:0]    wl_w,
    input  logic [C*IW-1:0]    wl_idx,
    input  logic [GW-1:0]      wl_gsel,
    input  logic               in_valid,
    output logic               in_ready,
    input  logic               in_last,
    input  logic [GR*M*DW-1:0] in_act,
    output logic               out_valid,
    input  logic               out_ready,
    output logic               out_last,
    output logic [C*AW-1:0]    out_data
);
    localparam int AWD = M*DW + 2;                 // activation group + bank tag + valid
    localparam int FW  = $clog2(R + C + 4) + 1;    // in-flight counter width
    localparam int RW  = $clog2(R + 1);
    localparam int D   = R + C - 1;                // tag pipeline stages

    // ------------------------------------------------------------------ control
    logic [1:0]    bank_full;
    logic          ld_bank, cur_bank;
    logic [RW-1:0] ld_row;
    logic [FW-1:0] inflight0, inflight1;
    logic          adv, in_fire, wl_fire;
    logic [D*3-1:0] tags;                          // {valid, last, bank} per stage
    wire  [2:0]    tag_out = tags[(D-1)*3 +: 3];

    assign adv      = !out_valid || out_ready;
    assign in_ready = adv && bank_full[cur_bank];
    assign in_fire  = in_valid && in_ready;
    assign wl_ready = !bank_full[ld_bank] && (ld_bank ? inflight1 == '0 : inflight0 == '0);
    assign wl_fire  = wl_valid && wl_ready;

    // ------------------------------------------------------------------ weight banks
    logic [R*C*DW-1:0] w0, w1;
    logic [R*C*IW-1:0] i0, i1;
    logic [R*GW-1:0]   g0, g1;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            w0 <= '0; w1 <= '0; i0 <= '0; i1 <= '0; g0 <= '0; g1 <= '0;
        end else if (wl_fire) begin
            if (ld_bank) begin
                w1[ld_row*C*DW +: C*DW] <= wl_w;
                i1[ld_row*C*IW +: C*IW] <= wl_idx;
                g1[ld_row*GW +: GW] <= wl_gsel;
            end else begin
                w0[ld_row*C*DW +: C*DW] <= wl_w;
                i0[ld_row*C*IW +: C*IW] <= wl_idx;
                g0[ld_row*GW +: GW] <= wl_gsel;
            end
        end
    end

    wire dec = adv && tag_out[2];
    wire dec0 = dec && !tag_out[0];
    wire dec1 = dec && tag_out[0];
    wire inc0 = in_fire && !cur_bank;
    wire inc1 = in_fire && cur_bank;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            bank_full <= 2'b00;
            ld_bank   <= 1'b0;
            cur_bank  <= 1'b0;
            ld_row    <= '0;
            inflight0 <= '0;
            inflight1 <= '0;
            tags      <= '0;
            out_valid <= 1'b0;
            out_last  <= 1'b0;
        end else begin
            inflight0 <= inflight0 + FW'(inc0) - FW'(dec0);
            inflight1 <= inflight1 + FW'(inc1) - FW'(dec1);
            if (wl_fire) begin
                if (ld_row == RW'(R - 1)) begin
                    ld_row <= '0;
                    bank_full[ld_bank] <= 1'b1;
                    ld_bank <= !ld_bank;
                end else begin
                    ld_row <= ld_row + 1'b1;
                end
            end
            if (in_fire && in_last) begin
                bank_full[cur_bank] <= 1'b0;
                cur_bank <= !cur_bank;
            end
            if (adv) begin
                tags      <= {tags[(D-1)*3-1:0], in_fire, in_last, cur_bank};
                out_valid <= tag_out[2];
                out_last  <= tag_out[1];
            end
        end
    end

    // ------------------------------------------------------------------ PE grid
    logic [R*(C-1)*AWD-1:0] a_all;  // registered activation group and tag of every PE but the last column
    logic [R*C*AW-1:0]  p_all;   // each PE's registered partial sum
    logic [R*C-1:0]     busy;    // per PE: the activation passing this cycle belongs to an accepted row

    for (genvar r = 0; r < R; r++) begin : row
        wire [GW-1:0] gsel = cur_bank ? g1[r*GW +: GW] : g0[r*GW +: GW];
        logic [M*DW-1:0] grp;    // the beat group this row's slot group reads
        always @(*) begin
            grp = '0;
            for (int q = 0; q < GR; q++) begin
                if (gsel == q[GW-1:0]) grp = in_act[q*M*DW +: M*DW];
            end
        end
        wire [AWD-1:0] src = {in_fire, cur_bank, grp};
        wire [AWD-1:0] row_in;
        if (r == 0) begin : noskew
            assign row_in = src;
        end else begin : skew
            logic [r*AWD-1:0] line;   // r stages of input skew
            if (r == 1) begin : one
                always_ff @(posedge clk) if (adv) line <= src;
            end else begin : many
                always_ff @(posedge clk) if (adv) line <= {line[(r-1)*AWD-1:0], src};
            end
            assign row_in = line[(r-1)*AWD +: AWD];
        end
        for (genvar c = 0; c < C; c++) begin : pe
            wire [AWD-1:0] a_in;
            wire signed [AW-1:0] p_in;
            if (c == 0) begin : left
                assign a_in = row_in;
            end else begin : inner
                assign a_in = a_all[(r*(C-1)+c-1)*AWD +: AWD];
            end
            if (r == 0) begin : top
                assign p_in = '0;
            end else begin : below
                assign p_in = p_all[((r-1)*C+c)*AW +: AW];
            end
            wire                 bank = a_in[AWD-2];
            wire        [IW-1:0] ix = bank ? i1[(r*C+c)*IW +: IW] : i0[(r*C+c)*IW +: IW];
            wire signed [DW-1:0] w  = bank ? w1[(r*C+c)*DW +: DW] : w0[(r*C+c)*DW +: DW];
            logic signed [DW-1:0] a;
            always @(*) begin
                a = '0;
                for (int p = 0; p < M; p++) begin
                    if (ix == p[IW-1:0]) a = a_in[p*DW +: DW];
                end
            end
            wire signed [2*DW-1:0] prod = w * a;
            logic [AW-1:0] p_q;
            always_ff @(posedge clk) if (adv) p_q <= p_in + AW'(prod);
            assign p_all[(r*C+c)*AW +: AW] = p_q;
            assign busy[r*C+c] = a_in[AWD-1];   // this PE multiplies a real (not bubble) row now
            if (c < C - 1) begin : pass
                logic [AWD-1:0] a_q;   // the activation moves on to the right
                always_ff @(posedge clk) if (adv) a_q <= a_in;
                assign a_all[(r*(C-1)+c)*AWD +: AWD] = a_q;
            end
        end
    end

    // ------------------------------------------------------------------ deskew and output
    for (genvar c = 0; c < C; c++) begin : col
        localparam int DL = C - 1 - c;
        wire [AW-1:0] bottom = p_all[((R-1)*C+c)*AW +: AW];
        wire [AW-1:0] aligned;
        if (DL == 0) begin : direct
            assign aligned = bottom;
        end else begin : delay
            logic [DL*AW-1:0] line;
            if (DL == 1) begin : one
                always_ff @(posedge clk) if (adv) line <= bottom;
            end else begin : many
                always_ff @(posedge clk) if (adv) line <= {line[(DL-1)*AW-1:0], bottom};
            end
            assign aligned = line[(DL-1)*AW +: AW];
        end
        always_ff @(posedge clk) begin
            if (!rst_n) out_data[c*AW +: AW] <= '0;
            else if (adv) out_data[c*AW +: AW] <= aligned;
        end
    end

`ifdef SPARSIM_ACTIVITY
    // Activity counters for energy checks (simulation only): what the array does, counted here.
    logic [31:0] act_mults, act_weight_writes, act_in_beats, act_out_beats;
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            act_mults <= '0; act_weight_writes <= '0; act_in_beats <= '0; act_out_beats <= '0;
        end else begin
            if (adv) act_mults <= act_mults + 32'($countones(busy));
            if (wl_fire) act_weight_writes <= act_weight_writes + 32'(C);
            if (in_fire) act_in_beats <= act_in_beats + 1;
            if (out_valid && out_ready) act_out_beats <= act_out_beats + 1;
        end
    end
`else
    wire unused_busy = &{1'b0, busy};
`endif
endmodule
